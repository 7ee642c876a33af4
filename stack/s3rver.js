'use strict';
// Start s3rver (the local S3-compatible server) on ADDRESS PORT with its objects under DIRECTORY.
// The key pair comes from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (never from argv, which `ps`
// shows) and replaces s3rver's built-in S3RVER/S3RVER pair; the bucket TO_BIKES_BUCKET is created
// if it does not exist. Objects are plain files, so they survive a restart.
//
// s3rver 3.7 lacks UploadPartCopy, which boto3's managed `copy()` and `aws s3 cp s3://... s3://...`
// use for objects above 8 MB; `uploadPartCopy` below adds it on top of s3rver's own store.
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');
const S3Error = require('s3rver/lib/models/error');

const [address, port, directory] = process.argv.slice(2);
const { AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: secret, TO_BIKES_BUCKET: bucket } = process.env;
if (!address || !port || !directory || !keyId || !secret || !bucket) {
  console.error('usage: s3rver.js ADDRESS PORT DIRECTORY (with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, TO_BIKES_BUCKET set)');
  process.exit(2);
}
DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
DUMMY_ACCOUNT.createKeyPair(keyId, secret);

function parseCopySource(header) {
  const source = decodeURIComponent(header.split('?')[0]).replace(/^\//, '');
  const [bucket, ...key] = source.split('/');
  return { bucket, key: key.join('/') };
}

function parseCopyRange(header) {
  if (!header) return undefined;
  const match = /^bytes=(\d+)-(\d+)$/.exec(header);
  if (!match) throw new S3Error('InvalidArgument', 'The x-amz-copy-source-range value must be bytes=first-last');
  return { start: Number(match[1]), end: Number(match[2]) };
}

// PUT /bucket/key?partNumber=N&uploadId=U with x-amz-copy-source: copy (a range of) an object into a part.
async function uploadPartCopy(ctx, next) {
  const { uploadId, partNumber } = ctx.query;
  if (ctx.method !== 'PUT' || !uploadId || !partNumber || !('x-amz-copy-source' in ctx.headers)) {
    return next();
  }
  if (!(ctx.headers.authorization || '').includes(`Credential=${keyId}/`)) {
    throw new S3Error('AccessDenied', 'Access Denied');
  }
  const bucket = ctx.path.split('/')[1];
  const source = parseCopySource(ctx.headers['x-amz-copy-source']);
  const object = await ctx.store.getObject(source.bucket, source.key, parseCopyRange(ctx.headers['x-amz-copy-source-range']));
  if (!object) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: source.key });
  const { md5 } = await ctx.store.putPart(bucket, uploadId, partNumber, object.content);
  ctx.body = { CopyPartResult: { LastModified: new Date().toISOString(), ETag: JSON.stringify(md5) } };
}

const server = new S3rver({
  address,
  port: Number(port),
  directory,
  silent: false,
  vhostBuckets: false,
  configureBuckets: [{ name: bucket }],
});
// Before s3rver's router (the last middleware), after its logger and XML encoder.
server.middleware.splice(server.middleware.length - 1, 0, uploadPartCopy);
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
