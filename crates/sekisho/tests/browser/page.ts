// Calls grpc.testing.TestService with gRPC-Web through each gateway address named by a
// `?gateway=` parameter (another origin than the page's own), and POSTs what happened to
// /report on the page's server, where the Rust test reads it.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { TestService } from "./gen/grpc/testing/test_pb";

// The custom header makes the browser send a CORS preflight before each call.
const headers = { "x-testbed-token": "browser-token" };

async function run(gateway: string): Promise<Record<string, unknown>> {
  const transport = createGrpcWebTransport({ baseUrl: gateway, useBinaryFormat: true });
  const client = createClient(TestService, transport);

  let backend: string | null = null;
  const unary = await client.unaryCall(
    { responseSize: 5, payload: { body: new TextEncoder().encode("xy") }, fillServerId: true },
    { headers, onHeader: (h) => (backend = h.get("x-backend")) },
  );

  const sizes: number[] = [];
  for await (const message of client.streamingOutputCall(
    { responseParameters: [{ size: 1 }, { size: 2, intervalUs: 50_000 }, { size: 3, intervalUs: 50_000 }] },
    { headers },
  )) {
    sizes.push(message.payload?.body.length ?? -1);
  }

  const unaryError = await failure(() =>
    client.unaryCall({ responseStatus: { code: Code.NotFound, message: "no such shoe" } }, { headers }),
  );

  const streamed: number[] = [];
  const streamError = await failure(async () => {
    for await (const message of client.streamingOutputCall(
      { responseParameters: [{ size: 4 }], responseStatus: { code: Code.ResourceExhausted, message: "stock ran out" } },
      { headers },
    )) {
      streamed.push(message.payload?.body.length ?? -1);
    }
  });

  return {
    gateway,
    protocols: protocolsTo(gateway),
    unary: {
      serverId: unary.serverId,
      payload: new TextDecoder().decode(unary.payload?.body),
      backendHeader: backend,
    },
    stream: { sizes },
    unaryError,
    streamError: { ...streamError, messagesBefore: streamed },
  };
}

async function failure(call: () => Promise<unknown>): Promise<{ code: number; message: string } | null> {
  try {
    await call();
    return null;
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: err.code, message: err.rawMessage };
  }
}

// The HTTP versions the browser used to reach `gateway` (`http/1.1` or `h2`).
function protocolsTo(gateway: string): string[] {
  const entries = performance.getEntriesByType("resource") as PerformanceResourceTiming[];
  const used = entries.filter((e) => e.name.startsWith(gateway)).map((e) => e.nextHopProtocol);
  return [...new Set(used)];
}

async function report(result: Record<string, unknown>): Promise<void> {
  await fetch("/report", { method: "POST", body: JSON.stringify(result) });
}

async function runAll(): Promise<Record<string, unknown>> {
  const runs = [];
  for (const gateway of new URL(location.href).searchParams.getAll("gateway")) {
    runs.push(await run(gateway));
  }
  return { userAgent: navigator.userAgent, runs };
}

runAll().then(report, (e) => report({ failed: String(e), stack: e instanceof Error ? e.stack : null }));
