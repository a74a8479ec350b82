#!/usr/bin/env node
// Runs one Code node of an exported n8n workflow outside n8n, so the JavaScript the example
// workflows ship can be tested without an n8n install.
//
//   node tests/n8n/run_code_node.js <workflow.json> "<Code node name>" <input.json>
//
// input.json:
//   {
//     "items":      [{"json": {...}, "binary": {"data": {"data": "<base64>", "mimeType": "..."}}}],
//     "env":        {"EXBRIEF_WEBHOOK_SECRET": "..."},        // what $env returns
//     "resumeUrl":  "http://n8n.internal:5678/webhook-waiting/42",   // $execution.resumeUrl
//     "executionId": "42",                                    // $execution.id (default "harness-1")
//     "staticData": {...},                                    // $getWorkflowStaticData('global')
//     "nodeStaticData": {...},                                // $getWorkflowStaticData('node')
//     "nodes":      {"Build bundle": [{"json": {...}}]}       // what $('Build bundle') sees
//   }
//
// On success it prints {"items": [...], "staticData": {...}} (plus "nodeStaticData" when the
// code asked for it) to stdout and exits 0. When the code throws, the message goes to stderr and
// the exit code is 1; a usage or input problem exits 2.
//
// The context mimics what n8n 2.x's JavaScript task runner gives a Code node in "Run Once for
// All Items" mode: the code runs as the body of an async function in a separate vm context whose
// global object carries $input, $json, items, $env, $execution, $getWorkflowStaticData, $(),
// helpers (so `this.helpers.getBinaryDataBuffer` resolves, `this` being that global object),
// require (only `crypto` is allowed here, as with NODE_FUNCTION_ALLOW_BUILTIN=crypto), Buffer and
// the timer functions. Luxon ($now, DateTime) is deliberately absent.

'use strict';

const fs = require('fs');
const vm = require('vm');
const nodeCrypto = require('crypto');

const TIMEOUT_MS = 10_000;

function usage(message) {
	process.stderr.write(`${message}\n`);
	process.stderr.write(
		'usage: node tests/n8n/run_code_node.js <workflow.json> "<Code node name>" <input.json>\n',
	);
	process.exit(2);
}

function readJson(path, what) {
	let text;
	try {
		text = fs.readFileSync(path, 'utf8');
	} catch (e) {
		usage(`cannot read ${what} ${path}: ${e.message}`);
	}
	try {
		return JSON.parse(text);
	} catch (e) {
		usage(`${what} ${path} is not JSON: ${e.message}`);
	}
}

const [workflowPath, nodeName, inputPath] = process.argv.slice(2);
if (!workflowPath || !nodeName || !inputPath) usage('missing arguments');

const workflow = readJson(workflowPath, 'workflow');
const input = readJson(inputPath, 'input');

const node = (workflow.nodes || []).find((n) => n.name === nodeName);
if (!node) {
	const names = (workflow.nodes || []).map((n) => JSON.stringify(n.name)).join(', ');
	usage(`no node named ${JSON.stringify(nodeName)} in ${workflowPath}; nodes: ${names}`);
}
if (node.type !== 'n8n-nodes-base.code') usage(`node ${JSON.stringify(nodeName)} is a ${node.type}, not a Code node`);
const params = node.parameters || {};
if (params.language && params.language !== 'javaScript') usage(`node ${JSON.stringify(nodeName)} is not JavaScript`);
const mode = params.mode || 'runOnceForAllItems';
if (mode !== 'runOnceForAllItems') usage(`node ${JSON.stringify(nodeName)} runs in mode ${mode}; only runOnceForAllItems is supported`);
const code = params.jsCode;
if (typeof code !== 'string' || code.trim() === '') usage(`node ${JSON.stringify(nodeName)} has no jsCode`);

if (!Array.isArray(input.items)) usage('input.items must be an array of {json, binary?} items');
const items = input.items.map((item, i) => {
	if (!item || typeof item !== 'object' || typeof item.json !== 'object' || item.json === null) {
		usage(`input.items[${i}] must be an object with a json object`);
	}
	return item;
});

const staticData = input.staticData && typeof input.staticData === 'object' ? input.staticData : {};
let nodeStaticData;
const env = input.env && typeof input.env === 'object' ? { ...input.env } : {};
const execution = {
	id: String(input.executionId ?? 'harness-1'),
	mode: 'production',
	resumeUrl: input.resumeUrl ?? `http://localhost:5678/webhook-waiting/${input.executionId ?? 'harness-1'}`,
};

function binaryMissing(itemIndex, property) {
	return new Error(
		`This operation expects the node's input data to contain a binary file '${property}', but none was found [item ${itemIndex}]`,
	);
}

const helpers = {
	async getBinaryDataBuffer(itemIndex, property) {
		const entry = items[itemIndex]?.binary?.[property];
		if (!entry || typeof entry.data !== 'string') throw binaryMissing(itemIndex, property);
		return Buffer.from(entry.data, 'base64');
	},
	assertBinaryData(itemIndex, property) {
		const entry = items[itemIndex]?.binary?.[property];
		if (!entry) throw binaryMissing(itemIndex, property);
		return entry;
	},
};

function accessor(list, label) {
	return {
		all: () => list,
		first: () => {
			if (list.length === 0) throw new Error(`${label} has no items`);
			return list[0];
		},
		last: () => {
			if (list.length === 0) throw new Error(`${label} has no items`);
			return list[list.length - 1];
		},
		get item() {
			return list[0];
		},
	};
}

const otherNodes = input.nodes && typeof input.nodes === 'object' ? input.nodes : {};
function nodeAccessor(name) {
	if (!Object.prototype.hasOwnProperty.call(otherNodes, name)) {
		throw new Error(`Referenced node is unexecuted: ${name} (give its output in input.nodes)`);
	}
	return accessor(otherNodes[name], `node ${name}`);
}

function getWorkflowStaticData(kind) {
	if (kind === 'global') return staticData;
	if (kind === 'node') {
		if (!nodeStaticData) {
			nodeStaticData =
				input.nodeStaticData && typeof input.nodeStaticData === 'object' ? input.nodeStaticData : {};
		}
		return nodeStaticData;
	}
	throw new Error(`The static data type "${kind}" is not known. Known are "global" and "node".`);
}

function sandboxRequire(name) {
	if (name === 'crypto' || name === 'node:crypto') return nodeCrypto;
	throw new Error(`Cannot find module '${name}' [line 1] (only 'crypto' is allowed here)`);
}

const inputAccessor = accessor(items, 'input');
const context = vm.createContext({
	$input: inputAccessor,
	$json: items[0]?.json,
	items,
	$env: env,
	$execution: execution,
	$getWorkflowStaticData: getWorkflowStaticData,
	$: nodeAccessor,
	helpers,
	require: sandboxRequire,
	Buffer,
	console: {
		log: (...args) => process.stderr.write(`[console.log] ${args.map(String).join(' ')}\n`),
		warn: () => {},
		error: () => {},
		info: () => {},
		debug: () => {},
	},
	setTimeout,
	clearTimeout,
	setInterval,
	clearInterval,
	setImmediate,
	clearImmediate,
	TextEncoder,
	TextDecoder,
	btoa,
	atob,
});

function normalise(result) {
	if (result === null || result === undefined) return [];
	if (Array.isArray(result)) return result;
	if (typeof result === 'object') return [result];
	throw new Error(`Code doesn't return items properly: return an array of objects, got ${typeof result}`);
}

function jsonSafe(value) {
	// Values built inside the vm context come from another realm; a round trip through JSON gives
	// plain objects (and drops functions, as n8n does when it stores an item).
	return JSON.parse(JSON.stringify(value));
}

async function main() {
	const wrapped = `(async function VmCodeWrapper() {${code}\n})()`;
	const run = vm.runInContext(wrapped, context, { timeout: TIMEOUT_MS, filename: `${nodeName}.js` });
	let timer;
	const timeout = new Promise((_, reject) => {
		timer = setTimeout(() => reject(new Error(`Code node did not finish within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
	});
	try {
		const result = await Promise.race([run, timeout]);
		const out = { items: jsonSafe(normalise(result)), staticData: jsonSafe(staticData) };
		if (nodeStaticData) out.nodeStaticData = jsonSafe(nodeStaticData);
		process.stdout.write(`${JSON.stringify(out)}\n`);
	} finally {
		clearTimeout(timer);
	}
}

main().then(
	() => process.exit(0),
	(error) => {
		const message = error && typeof error === 'object' && 'message' in error ? error.message : String(error);
		process.stderr.write(`${message}\n`);
		process.exit(1);
	},
);
