// Drives a running Junction server with @jupyterlab/services, the client JupyterLab uses.
//
// Environment: JUNCTION_URL (base URL, e.g. http://127.0.0.1:8888/), JUNCTION_TOKEN.
// Prints one JSON object on stdout: {"ok", "steps": {name: {"ok", "ms", ...facts}}, "error"?}.
// Exits 0 when every step passed, 1 otherwise. Steps run in order and stop at the first failure.
//
// Node 20 has fetch, Request and Headers but no WebSocket, so `ws` is passed in the settings.

import {
  KernelManager,
  KernelSpecManager,
  ServerConnection,
  SessionManager,
} from '@jupyterlab/services';
import WebSocket from 'ws';

const STEP_TIMEOUT_MS = 60_000;

const baseUrl = process.env.JUNCTION_URL;
const token = process.env.JUNCTION_TOKEN;
if (!baseUrl || !token) {
  console.log(JSON.stringify({ ok: false, error: 'set JUNCTION_URL and JUNCTION_TOKEN' }));
  process.exit(2);
}

const serverSettings = ServerConnection.makeSettings({
  baseUrl,
  token,
  appendToken: true,
  WebSocket,
  fetch,
  Request,
  Headers,
});

const summary = { ok: false, steps: {} };

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function step(name, body) {
  const started = performance.now();
  const record = { ok: false };
  summary.steps[name] = record;
  try {
    Object.assign(record, (await withTimeout(body(), name)) ?? {});
    record.ok = true;
  } finally {
    record.ms = Math.round(performance.now() - started);
  }
}

// Run code and collect what the kernel printed and how the request ended.
// `onStdout` is called with each piece of stdout as it arrives.
async function execute(kernel, code, { onStdout } = {}) {
  const future = kernel.requestExecute({ code });
  let stdout = '';
  let errorName = null;
  future.onIOPub = (msg) => {
    const type = msg.header.msg_type;
    if (type === 'stream' && msg.content.name === 'stdout') {
      stdout += msg.content.text;
      if (onStdout) onStdout(msg.content.text);
    } else if (type === 'error') {
      errorName = msg.content.ename;
    }
  };
  const reply = await future.done;
  return { stdout, status: reply.content.status, errorName };
}

async function runningKernelIds(kernelManager) {
  await kernelManager.refreshRunning();
  return Array.from(kernelManager.running(), (model) => model.id);
}

const kernelSpecs = new KernelSpecManager({ serverSettings });
const kernelManager = new KernelManager({ serverSettings });
const sessionManager = new SessionManager({ serverSettings, kernelManager });

let exitCode = 1;
try {
  let specName;
  let kernel;

  await step('kernelspecs', async () => {
    await kernelSpecs.ready;
    await kernelSpecs.refreshSpecs();
    const specs = kernelSpecs.specs;
    check(specs && specs.default, 'no default kernel spec');
    check(specs.kernelspecs[specs.default], `default spec ${specs.default} is not listed`);
    specName = specs.default;
    return { default: specs.default, names: Object.keys(specs.kernelspecs).sort() };
  });

  await step('start_kernel', async () => {
    await kernelManager.ready;
    kernel = await kernelManager.startNew({ name: specName });
    const info = await kernel.info;
    check(info.status === 'ok', `kernel_info_reply status ${info.status}`);
    check((await runningKernelIds(kernelManager)).includes(kernel.id), 'kernel not listed');
    return { id: kernel.id, name: kernel.name, language: info.language_info.name };
  });

  await step('execute', async () => {
    const result = await execute(kernel, 'print(6*7)');
    check(result.status === 'ok', `execute status ${result.status}`);
    check(result.stdout === '42\n', `stdout was ${JSON.stringify(result.stdout)}`);
    return { stdout: result.stdout };
  });

  await step('interrupt', async () => {
    // Interrupt once the cell's own code runs: a SIGINT that lands between the kernel's
    // busy status and the cell (while ipykernel prepares it) is not the cell's to raise.
    let started;
    const isSleeping = new Promise((resolve) => {
      started = resolve;
    });
    const running = execute(kernel, 'import time; print("sleeping", flush=True); time.sleep(30)', {
      onStdout: started,
    });
    await isSleeping;
    const asked = performance.now();
    await kernel.interrupt();
    const result = await running;
    check(result.status === 'error', `sleep ended with status ${result.status}`);
    check(result.errorName === 'KeyboardInterrupt', `error was ${result.errorName}`);
    return { error: result.errorName, interrupt_ms: Math.round(performance.now() - asked) };
  });

  await step('restart', async () => {
    await execute(kernel, 'before_restart = 1');
    await kernel.restart();
    const result = await execute(kernel, "print('before_restart' in dir(), 6*7)");
    check(result.stdout === 'False 42\n', `after restart stdout was ${JSON.stringify(result.stdout)}`);
    check(kernel.connectionStatus === 'connected', `connection ${kernel.connectionStatus}`);
    return { stdout: result.stdout };
  });

  await step('shutdown_kernel', async () => {
    const id = kernel.id;
    await kernel.shutdown();
    check(!(await runningKernelIds(kernelManager)).includes(id), 'kernel still listed');
  });

  let session;
  await step('session_create', async () => {
    await sessionManager.ready;
    session = await sessionManager.startNew({
      path: 'clients/node.ipynb',
      type: 'notebook',
      name: 'node.ipynb',
      kernel: { name: specName },
    });
    check(session.kernel, 'session has no kernel');
    const result = await execute(session.kernel, 'print(6*7); print(__session__)');
    const [answer, sessionName] = result.stdout.split('\n');
    check(answer === '42', `session kernel printed ${JSON.stringify(result.stdout)}`);
    return { id: session.id, kernel: session.kernel.id, session_name: sessionName };
  });

  await step('session_list', async () => {
    await sessionManager.refreshRunning();
    const listed = Array.from(sessionManager.running());
    const mine = listed.find((model) => model.id === session.id);
    check(mine, 'session not listed');
    check(mine.path === 'clients/node.ipynb', `listed path ${mine.path}`);
    check(mine.kernel.id === session.kernel.id, 'listed kernel differs');
    const again = await sessionManager.findByPath('clients/node.ipynb');
    check(again && again.id === session.id, 'findByPath did not find the session');
    return { count: listed.length };
  });

  await step('session_patch', async () => {
    await session.setPath('clients/renamed.ipynb');
    await session.setName('renamed.ipynb');
    check(session.path === 'clients/renamed.ipynb', `path is ${session.path}`);
    const oldKernel = session.kernel.id;
    const kernelConnection = await session.changeKernel({ name: specName });
    check(kernelConnection && kernelConnection.id !== oldKernel, 'kernel did not change');
    const result = await execute(kernelConnection, 'print(6*7)');
    check(result.stdout === '42\n', `new kernel printed ${JSON.stringify(result.stdout)}`);
    const running = await runningKernelIds(kernelManager);
    check(!running.includes(oldKernel), 'old kernel still running after changeKernel');
    check(running.includes(kernelConnection.id), 'new kernel not running');
    return { path: session.path, name: session.name, kernel: kernelConnection.id };
  });

  await step('session_delete', async () => {
    const id = session.id;
    const kernelId = session.kernel.id;
    await session.shutdown();
    await sessionManager.refreshRunning();
    check(!Array.from(sessionManager.running()).some((m) => m.id === id), 'session listed');
    check(!(await runningKernelIds(kernelManager)).includes(kernelId), 'kernel still running');
  });

  summary.ok = true;
  exitCode = 0;
} catch (error) {
  summary.error = String(error && error.stack ? error.stack : error);
} finally {
  sessionManager.dispose();
  kernelManager.dispose();
  kernelSpecs.dispose();
}
console.log(JSON.stringify(summary));
process.exit(exitCode);
