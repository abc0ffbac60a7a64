'use strict';
// A plain Node gRPC client calling an rpc_parallel worker: no Python involved on this side.
// Driven by tests/integration/test_node_client.py. Everything comes from the environment (the
// token never travels on argv):
//   RPCPAR_MODE           counter (default) | plain | noauth
//   RPCPAR_ADDRESS        host:port of the worker server
//   RPCPAR_TOKEN          the master's token, sent as `rpcpar-token` metadata on every call
//   RPCPAR_WORKER_ID      the worker id (OpenConnection checks it)
//   RPCPAR_FINGERPRINT    the worker type's fingerprint (OpenConnection checks it)
//   RPCPAR_PROTO          the worker type's generated .proto
//   RPCPAR_CONTROL_PROTO  proto/rpc_parallel/_proto/control.proto
//   RPCPAR_SERVICE        the worker type's full service name, e.g. examples.counter.Counter
// Prints one JSON object on stdout and exits 0; any unexpected failure exits 1 with a message.

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const env = (name, fallback) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(`environment variable ${name} is not set`);
  }
  return value;
};

const LOADER_OPTIONS = {
  keepCase: true, // field names exactly as in the .proto (connection_id, worker_id)
  longs: String, // sint64 arrives as a decimal string: no precision loss beyond 2**53
  enums: String,
  defaults: true,
  oneofs: true,
};
const DEADLINE_MS = 30000;
const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

function lookup(root, dotted) {
  return dotted.split('.').reduce((node, part) => (node === undefined ? undefined : node[part]), root);
}

function loadService(protoFile, serviceName) {
  const definition = protoLoader.loadSync(protoFile, {
    ...LOADER_OPTIONS,
    // control.proto imports rpc_parallel/_proto/errors.proto: the proto/ root is an include path too
    includeDirs: [path.dirname(protoFile), path.resolve(path.dirname(protoFile), '..', '..')],
  });
  const Service = lookup(grpc.loadPackageDefinition(definition), serviceName);
  if (typeof Service !== 'function') throw new Error(`no service ${serviceName} in ${protoFile}`);
  return Service;
}

function metadata({ token, conn }) {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('rpcpar-token', token);
  if (conn !== undefined) md.set('rpcpar-conn', conn);
  return md;
}

function deadline() {
  return new Date(Date.now() + DEADLINE_MS);
}

function unary(client, method, request, md) {
  return new Promise((resolve, reject) => {
    client[method](request, md, { deadline: deadline() }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// A unary call expected to fail: its status code name and details.
async function failure(client, method, request, md) {
  try {
    const response = await unary(client, method, request, md);
    return { code: 'OK', details: '', response };
  } catch (err) {
    if (err.code === undefined) throw err;
    return { code: STATUS_NAMES[err.code] || String(err.code), details: err.details };
  }
}

// A server-streaming call: every response message, in order.
function collect(client, method, request, md) {
  return new Promise((resolve, reject) => {
    const messages = [];
    const call = client[method](request, md, { deadline: deadline() });
    call.on('data', (m) => messages.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(messages));
  });
}

// Control/OpenConnection: the first ConnectionEvent carries the connection id; the stream stays
// open as long as the connection does (cancelling it closes the connection on the worker).
function openConnection(control, request, md) {
  return new Promise((resolve, reject) => {
    const stream = control.OpenConnection(request, md);
    let opened = false;
    stream.on('data', (event) => {
      if (!opened) {
        opened = true;
        resolve({ stream, id: event.connection_id });
      }
    });
    stream.on('error', (err) => {
      if (!opened) reject(err); // after opening: our own cancel (CANCELLED) or the worker going away
    });
    stream.on('end', () => {
      if (!opened) reject(new Error('OpenConnection ended without a ConnectionEvent'));
    });
  });
}

// The worker type's `<Service>ConnectionInit` message, serialized with protobufjs.
function encodeConnectionInit(protoFile, serviceName, value) {
  const Init = protobuf.loadSync(protoFile).lookupType(`${serviceName}ConnectionInit`);
  const message = { arg: value };
  const problem = Init.verify(message);
  if (problem) throw new Error(problem);
  return Buffer.from(Init.encode(Init.create(message)).finish());
}

async function counterMode(ctx) {
  const { client, control, token } = ctx;
  const result = {};
  // Counter has init_connection_state: a call without rpcpar-conn is refused before user code.
  result.without_connection = await failure(client, 'Whoami', {}, metadata({ token }));

  const { stream, id } = await openConnection(control, {
    worker_id: env('RPCPAR_WORKER_ID'),
    fingerprint: env('RPCPAR_FINGERPRINT'),
    functions: [], // per-function fingerprints only improve the mismatch message
    arg: encodeConnectionInit(ctx.protoFile, ctx.serviceName, 'node'),
  }, metadata({ token }));
  result.connection_id = id;
  const md = metadata({ token, conn: id });
  try {
    result.incr = Number((await unary(client, 'Incr', { by: 5 }, md)).value);
    result.whoami = (await unary(client, 'Whoami', {}, md)).value;
    // Pipe results are batched: each response message carries `repeated items`.
    const messages = await collect(client, 'CountTo', { n: 1000 }, md);
    result.count_to = messages.flatMap((m) => m.items.map(Number));
    result.count_to_messages = messages.length;
    result.boom = await failure(client, 'Boom', { message: 'from node' }, md);
  } finally {
    stream.cancel(); // closes the connection on the worker
  }
  return result;
}

async function plainMode(ctx) {
  // A worker type without init_connection_state: plain calls, no OpenConnection, no rpcpar-conn.
  const { client, token } = ctx;
  const md = metadata({ token });
  return {
    size: Number((await unary(client, 'Size', { data: Buffer.from('hello, worker') }, md)).value),
    echo: (await unary(client, 'Echo', { data: Buffer.from([0, 1, 2, 255]) }, md)).value.toString('hex'),
  };
}

async function noauthMode(ctx) {
  const { client, control } = ctx;
  const openRequest = { worker_id: env('RPCPAR_WORKER_ID'), fingerprint: env('RPCPAR_FINGERPRINT') };
  const openFailure = async (md) => {
    try {
      const { stream } = await openConnection(control, openRequest, md);
      stream.cancel();
      return { code: 'OK', details: '' };
    } catch (err) {
      return { code: STATUS_NAMES[err.code] || String(err.code), details: err.details };
    }
  };
  return {
    incr_without_token: await failure(client, 'Incr', { by: 1 }, metadata({})),
    incr_wrong_token: await failure(client, 'Incr', { by: 1 }, metadata({ token: 'not-the-token' })),
    open_without_token: await openFailure(metadata({})),
  };
}

async function main() {
  const mode = env('RPCPAR_MODE', 'counter');
  const address = env('RPCPAR_ADDRESS');
  const protoFile = env('RPCPAR_PROTO');
  const serviceName = env('RPCPAR_SERVICE');
  const Service = loadService(protoFile, serviceName);
  const Control = loadService(env('RPCPAR_CONTROL_PROTO'), 'rpc_parallel.v1.Control');
  const credentials = grpc.credentials.createInsecure();
  const client = new Service(address, credentials);
  const control = new Control(address, credentials);
  const ctx = { client, control, protoFile, serviceName, token: env('RPCPAR_TOKEN', '') };
  try {
    const modes = { counter: counterMode, plain: plainMode, noauth: noauthMode };
    if (!(mode in modes)) throw new Error(`unknown RPCPAR_MODE ${mode}`);
    const result = await modes[mode](ctx);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    client.close();
    control.close();
  }
}

main().then(
  () => { process.exitCode = 0; },
  (err) => {
    process.stderr.write(`node client failed: ${err && err.stack ? err.stack : err}\n`);
    if (err && err.code !== undefined) process.stderr.write(`gRPC status ${err.code}: ${err.details}\n`);
    process.exitCode = 1;
  },
);
