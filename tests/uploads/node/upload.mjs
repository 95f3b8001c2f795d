// Uploads a file to a running Junction server with tus-js-client, interrupted and resumed.
//
//   node upload.mjs <server url> <token> <file> <folder> <name>
//
// The first client aborts its second PATCH in the middle of the body (at its first progress
// event, after the first chunk was acknowledged); a second client resumes from the upload URL (HEAD, then PATCH from the
// server's offset) and finishes. Prints one JSON line: the URL, where the second client
// resumed, and the bytes each client saw acknowledged.
import { readFileSync } from "node:fs";
import tus from "tus-js-client";

const [url, token, file, folder, name] = process.argv.slice(2);
const data = readFileSync(file);
const common = {
  headers: { Authorization: `token ${token}` },
  chunkSize: 1 << 20,
  retryDelays: [0, 100, 250, 500, 1000, 2000],
  metadata: { filename: name, path: folder },
};

function fail(message) {
  console.error(message);
  process.exit(1);
}

const first = await new Promise((resolve, reject) => {
  const upload = new tus.Upload(data, {
    ...common,
    endpoint: `${url}api/uploads`,
    onProgress(sent) {
      if (sent > common.chunkSize && upload.url) {
        upload.abort(false).then(() => resolve({ url: upload.url, sent }), reject);
      }
    },
    onSuccess() {
      reject(new Error("the first client was meant to be interrupted"));
    },
    onError: reject,
  });
  upload.start();
}).catch((error) => fail(`first client: ${error}`));

const second = await new Promise((resolve, reject) => {
  let resumedFrom = null;
  const upload = new tus.Upload(data, {
    ...common,
    uploadUrl: first.url,
    onChunkComplete(size, accepted) {
      if (resumedFrom === null) resumedFrom = accepted - size;
    },
    onSuccess() {
      resolve({ resumedFrom, url: upload.url });
    },
    onError: reject,
  });
  upload.start();
}).catch((error) => fail(`second client: ${error}`));

console.log(JSON.stringify({ url: first.url, firstSent: first.sent, ...second }));
