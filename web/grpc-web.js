// A small gRPC-Web client (binary mode) with just enough protobuf to speak ashi.v1: the page
// needs four calls, which does not justify a code generator and a bundler.

/** A failed call: the gRPC status code and message, from trailers or the HTTP answer. */
export class GrpcError extends Error {
  constructor(code, message) {
    super(message || `gRPC status ${code}`);
    this.code = code;
  }
}

// ---- encoding ----------------------------------------------------------------------------

/** Builds one protobuf message; field methods skip proto3 default values. */
export class Writer {
  constructor() {
    this.bytes = [];
  }
  varint(value) {
    let v = BigInt.asUintN(64, BigInt(value));
    while (v > 0x7fn) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
    return this;
  }
  tag(field, wireType) {
    return this.varint((field << 3) | wireType);
  }
  uint(field, value) {
    return value ? this.tag(field, 0).varint(value) : this;
  }
  string(field, value) {
    if (!value) return this;
    return this.lengthDelimited(field, new TextEncoder().encode(value));
  }
  message(field, writer) {
    return this.lengthDelimited(field, writer.finish());
  }
  lengthDelimited(field, bytes) {
    this.tag(field, 2).varint(bytes.length);
    for (const b of bytes) this.bytes.push(b);
    return this;
  }
  finish() {
    return Uint8Array.from(this.bytes);
  }
}

// ---- decoding ----------------------------------------------------------------------------

/**
 * Decodes `bytes` with `schema`: { fieldNumber: [name, type, options] }, where type is
 * 'string', 'double', 'uint', 'int', 'bool', 'enum' or a nested schema object, and options
 * may be { repeated: true }. Unknown fields are skipped, absent ones get proto3 defaults.
 */
export function decode(bytes, schema) {
  const out = {};
  for (const [name, type, options] of Object.values(schema)) {
    out[name] = options?.repeated ? [] : defaultOf(type);
  }
  const r = new Reader(bytes);
  while (!r.done()) {
    const key = r.varint();
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    const spec = schema[field];
    if (!spec) {
      r.skip(wireType);
      continue;
    }
    const [name, type, options] = spec;
    const put = (value) => (options?.repeated ? out[name].push(value) : (out[name] = value));
    if (wireType === 2 && !isLengthDelimited(type)) {
      // A packed repeated scalar.
      const packed = new Reader(r.bytes());
      while (!packed.done()) put(packed.scalar(type));
    } else if (typeof type === 'object') {
      put(decode(r.bytes(), type));
    } else if (type === 'string') {
      put(new TextDecoder().decode(r.bytes()));
    } else {
      put(r.scalar(type, wireType));
    }
  }
  return out;
}

function isLengthDelimited(type) {
  return typeof type === 'object' || type === 'string';
}

function defaultOf(type) {
  if (typeof type === 'object') return null;
  if (type === 'string') return '';
  if (type === 'bool') return false;
  return 0;
}

class Reader {
  constructor(bytes) {
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  done() {
    return this.pos >= this.buf.length;
  }
  need(n) {
    if (this.pos + n > this.buf.length) throw new GrpcError(13, 'truncated protobuf message');
  }
  varint() {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      this.need(1);
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
    }
    throw new GrpcError(13, 'malformed varint');
  }
  bytes() {
    const len = Number(this.varint());
    this.need(len);
    const slice = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return slice;
  }
  scalar(type, wireType) {
    if (type === 'double' || wireType === 1) {
      this.need(8);
      const v = this.view.getFloat64(this.pos, true);
      this.pos += 8;
      return v;
    }
    const v = this.varint();
    if (type === 'bool') return v !== 0n;
    if (type === 'int') return Number(BigInt.asIntN(64, v));
    return Number(v);
  }
  skip(wireType) {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new GrpcError(13, `unsupported wire type ${wireType}`);
  }
}

// ---- the call ----------------------------------------------------------------------------

/**
 * Calls `path` (e.g. '/ashi.v1.CatalogService/ListShoes') with one request message and
 * returns the response message's bytes. Throws GrpcError for a non-OK status.
 */
export async function unary(path, request, token) {
  const body = new Uint8Array(5 + request.length);
  new DataView(body.buffer).setUint32(1, request.length);
  body.set(request, 5);
  const headers = {
    'content-type': 'application/grpc-web+proto',
    'x-grpc-web': '1',
  };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(path, { method: 'POST', headers, body });
  // Trailers-only answers (an error before any message) carry the status in headers.
  const headerStatus = response.headers.get('grpc-status');
  if (headerStatus !== null && headerStatus !== '0') {
    throw new GrpcError(Number(headerStatus), decodeURIComponent(response.headers.get('grpc-message') || ''));
  }
  if (!response.ok) throw new GrpcError(2, `HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let message = null;
  let trailers = {};
  for (let pos = 0; pos + 5 <= bytes.length; ) {
    const flags = bytes[pos];
    const len = new DataView(bytes.buffer, bytes.byteOffset + pos + 1, 4).getUint32(0);
    const frame = bytes.subarray(pos + 5, pos + 5 + len);
    pos += 5 + len;
    if (flags & 0x80) trailers = parseTrailers(frame);
    else message = frame;
  }
  const status = Number(trailers['grpc-status'] ?? headerStatus ?? 2);
  if (status !== 0) {
    throw new GrpcError(status, decodeURIComponent(trailers['grpc-message'] || ''));
  }
  return message ?? new Uint8Array();
}

function parseTrailers(frame) {
  const trailers = {};
  for (const line of new TextDecoder().decode(frame).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return trailers;
}
