'use strict';
// Start s3rver (the local S3-compatible server) on ADDRESS PORT with its objects under DIRECTORY.
// The key pair comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (never from argv, which `ps`
// shows) and replaces s3rver's built-in S3RVER/S3RVER pair; the bucket TO_BIKES_BUCKET is created
// if it does not exist. Objects are plain files, so they survive a restart.
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

const [address, port, directory] = process.argv.slice(2);
const { AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: secret, TO_BIKES_BUCKET: bucket } = process.env;
if (!address || !port || !directory || !keyId || !secret || !bucket) {
  console.error('usage: s3rver.js ADDRESS PORT DIRECTORY (with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, TO_BIKES_BUCKET set)');
  process.exit(2);
}
DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
DUMMY_ACCOUNT.createKeyPair(keyId, secret);

const server = new S3rver({
  address,
  port: Number(port),
  directory,
  silent: false,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket }],
});
server.run().then(
  () => console.log(`s3rver listening on http://${address}:${port} (bucket ${bucket}, objects in ${directory})`),
  (err) => {
    console.error(`s3rver could not start on ${address}:${port}: ${err.message}`);
    process.exit(1);
  },
);
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
