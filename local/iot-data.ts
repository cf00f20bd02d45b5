/**
 * The IoT data plane's stand-in (`POST /topics/{topic}?qos=`, the call behind
 * IoTDataPlaneClient's PublishCommand): the embedded cloud serves it over HTTP
 * (local/cloud.ts) for other processes, and hands its own hub's SDK client this
 * in-process transport (the SDK's `requestHandler` plug-in): the client still
 * builds, signs and checks every request, only the socket, the HTTP parser and
 * the loopback round trip are skipped.
 */

/** Publish a message to the embedded broker (topic, UTF-8 text, QoS). */
export type BrokerPublish = (topic: string, text: string, qos: 0 | 1) => Promise<void>;

/** The parts of the SDK's HttpRequest this transport reads. */
interface SdkRequest {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  body?: unknown;
}

type SdkResponse = { response: { statusCode: number; headers: Record<string, string>; body: Uint8Array } };

const PREFIX = '/topics/';

/** The topic of a `POST /topics/{topic}` path (percent-decoded), or undefined for any other request. */
export function publishTopic(method: string, path: string): string | undefined {
  if (method !== 'POST' || !path.startsWith(PREFIX) || path.length === PREFIX.length) return undefined;
  return decodeURIComponent(path.slice(PREFIX.length));
}

/** QoS of a publish: 0 only when asked for, else 1 (as the HTTP route reads it). */
export const publishQos = (qos: unknown): 0 | 1 => (qos === '0' ? 0 : 1);

const reply = (statusCode: number, body: object): SdkResponse => ({
  response: { statusCode, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) },
});

export class InProcessIotData {
  readonly metadata = { handlerProtocol: 'in-process' };

  constructor(private readonly publish: BrokerPublish) {}

  async handle(request: SdkRequest): Promise<SdkResponse> {
    const topic = publishTopic(request.method, request.path);
    if (topic === undefined) return reply(404, { message: `no route for ${request.method} ${request.path}` });
    const body = request.body;
    const text =
      body === undefined || body === null
        ? ''
        : typeof body === 'string'
          ? body
          : Buffer.from((body as Uint8Array).buffer, (body as Uint8Array).byteOffset, (body as Uint8Array).byteLength).toString('utf8');
    const q = request.query?.qos;
    await this.publish(topic, text, publishQos(Array.isArray(q) ? q[0] : q));
    return reply(200, {});
  }

  /** Part of the SDK's handler interface; nothing to configure. */
  updateHttpClientConfig(): void {}
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }
  destroy(): void {}
}
