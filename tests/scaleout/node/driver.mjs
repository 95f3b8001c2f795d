// A notebook client under Node, driven line by line from a test: @jupyterlab/services (the
// client JupyterLab uses) against Junction replicas behind nginx.
//
// The packages come from the client tests' project (tests/clients/node), by path.
// Environment: JUNCTION_URL (nginx's base URL), JUNCTION_TOKEN, JUNCTION_TAG (prefix of the
// X-Request-ID of every request this client makes, HTTP and WebSocket, so that nginx's access
// log tells which replica served each).
//
// stdin: one JSON command a line, {"id", "op", ...}; stdout: one JSON line per answer
// ({"id", "ok", "result"} or {"id", "ok": false, "error"}) and per event ({"event", ...}).
// Ops: session (start a notebook session, its kernel), connect (reconnect the kernel's
// WebSocket), execute (run code, wait for its reply), submit (run code without waiting: its
// stdout arrives as "stdout" events), status, sessions, close.

import { createRequire } from 'node:module';
import readline from 'node:readline';

const require = createRequire(new URL('../../clients/node/package.json', import.meta.url));
const { ServerConnection, KernelManager, SessionManager } = require('@jupyterlab/services');
const WebSocket = require('ws');

const baseUrl = process.env.JUNCTION_URL;
const token = process.env.JUNCTION_TOKEN;
const tag = process.env.JUNCTION_TAG ?? 'client';
if (!baseUrl || !token) {
  console.log(JSON.stringify({ event: 'fatal', error: 'set JUNCTION_URL and JUNCTION_TOKEN' }));
  process.exit(2);
}

let counter = 0;
const nextId = (kind) => `${tag}-${kind}-${++counter}`;

function emit(line) {
  process.stdout.write(JSON.stringify(line) + '\n');
}

// Every WebSocket names itself to nginx (X-Request-ID) and reports its opening and closing.
class TaggedWebSocket extends WebSocket {
  constructor(url, protocols) {
    const requestId = nextId('ws');
    super(url, protocols, { headers: { 'X-Request-ID': requestId } });
    this.requestId = requestId;
    this.on('open', () => emit({ event: 'ws_open', request_id: requestId }));
    this.on('close', (code, reason) =>
      emit({ event: 'ws_close', request_id: requestId, code, reason: reason.toString() }),
    );
  }
}

function taggedFetch(input, init) {
  const request = new Request(input, init);
  request.headers.set('X-Request-ID', nextId('http'));
  return fetch(request);
}

const serverSettings = ServerConnection.makeSettings({
  baseUrl,
  token,
  appendToken: true,
  WebSocket: TaggedWebSocket,
  fetch: taggedFetch,
  Request,
  Headers,
});

const kernelManager = new KernelManager({ serverSettings });
const sessionManager = new SessionManager({ serverSettings, kernelManager });
let session = null;
let kernel = null;
let lastWebSocket = null;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function watch(connection) {
  connection.connectionStatusChanged.connect((_, status) =>
    emit({ event: 'connection', status, ws: currentSocket() }),
  );
  connection.statusChanged.connect((_, status) => emit({ event: 'status', status }));
}

function currentSocket() {
  // The socket the kernel connection uses now (private field of KernelConnection).
  const ws = kernel?._ws;
  if (ws && ws.requestId) {
    lastWebSocket = ws.requestId;
  }
  return ws?.requestId ?? null;
}

// Stream text of one request, reported as it comes (and kept for its answer).
function run(code) {
  const future = kernel.requestExecute({ code }, true);
  const msgId = future.msg.header.msg_id;
  const collected = { stdout: '', error: null };
  future.onIOPub = (msg) => {
    const type = msg.header.msg_type;
    if (type === 'stream') {
      collected.stdout += msg.content.text;
      emit({ event: 'stdout', msg_id: msgId, text: msg.content.text, at: Date.now() });
    } else if (type === 'error') {
      collected.error = msg.content.ename;
    } else if (type === 'execute_result') {
      collected.result = msg.content.data['text/plain'];
    }
  };
  return { future, msgId, collected };
}

const ops = {
  async session({ path }) {
    await sessionManager.ready;
    session = await sessionManager.startNew({
      path,
      name: path,
      type: 'notebook',
      kernel: { name: 'python3' },
    });
    kernel = session.kernel;
    watch(kernel);
    const info = await kernel.info;
    return {
      session_id: session.id,
      path: session.path,
      kernel_id: kernel.id,
      client_id: kernel.clientId,
      info: info.status,
      ws: currentSocket(),
    };
  },

  async connect() {
    await withTimeout(kernel.reconnect(), 30000, 'reconnecting');
    return { ws: currentSocket(), status: kernel.status };
  },

  async execute({ code, timeout_ms: timeoutMs }) {
    const { future, collected } = run(code);
    const reply = await withTimeout(future.done, timeoutMs ?? 30000, 'execute');
    const { status, ename, evalue } = reply.content;
    return { status, ename, evalue, ...collected, ws: currentSocket() };
  },

  async submit({ code }) {
    const { future, msgId } = run(code);
    future.done.then(
      (reply) => emit({ event: 'reply', msg_id: msgId, status: reply.content.status }),
      (error) => emit({ event: 'reply', msg_id: msgId, error: String(error) }),
    );
    return { msg_id: msgId };
  },

  async wait_connected({ timeout_ms: timeoutMs }) {
    const connected = new Promise((resolve) => {
      const check = () => {
        if (kernel.connectionStatus === 'connected') {
          kernel.connectionStatusChanged.disconnect(check);
          resolve();
        }
      };
      kernel.connectionStatusChanged.connect(check);
      check();
    });
    await withTimeout(connected, timeoutMs ?? 30000, 'connecting');
    return { ws: currentSocket() };
  },

  async status() {
    return {
      connection: kernel.connectionStatus,
      status: kernel.status,
      kernel_id: kernel.id,
      ws: currentSocket(),
    };
  },

  async sessions() {
    await sessionManager.refreshRunning();
    await kernelManager.refreshRunning();
    return {
      sessions: Array.from(sessionManager.running(), (model) => ({
        id: model.id,
        path: model.path,
        kernel_id: model.kernel?.id ?? null,
      })),
      kernels: Array.from(kernelManager.running(), (model) => model.id),
    };
  },

  async close() {
    if (session !== null) {
      await session.shutdown();
    }
    return {};
  },
};

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  let command;
  try {
    command = JSON.parse(line);
  } catch (error) {
    emit({ event: 'fatal', error: `bad command: ${error}` });
    return;
  }
  const { id, op, ...args } = command;
  try {
    const result = await ops[op](args);
    emit({ id, ok: true, result });
  } catch (error) {
    emit({ id, ok: false, error: String(error?.stack ?? error) });
  }
});
lines.on('close', () => {
  sessionManager.dispose();
  kernelManager.dispose();
  process.exit(0);
});
emit({ event: 'ready' });
