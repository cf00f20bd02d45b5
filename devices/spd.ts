/**
 * The service provider's device (SPD): waits for grants from its back-end
 * (an obligation for it was accepted) and delivers the service. Duplicate
 * grants are delivered once. A grant comes with the accepted reply to the
 * consumer, in one publish both devices receive (topics.grantsFor); a grant
 * on its own `in/grant` topic is still honoured. It publishes nothing: its
 * device policy allows publishing only by Basic Ingest to the hub's topic rules
 * (request, obligation), and no rule takes deliveries.
 */
import { DEFAULT_TOPIC_ROOT, topicsUnder } from '../service/topics.ts';
import type { DeviceLink } from './link.ts';

export interface Grant {
  obligationId: string;
  consumer: string;
  service: string;
  amount: number;
}

export class ProviderDevice {
  readonly delivered = new Map<string, Grant>();
  private readonly listeners: ((g: Grant) => void)[] = [];
  private readonly topics: ReturnType<typeof topicsUnder>;

  constructor(
    private readonly domain: string,
    private readonly deviceId: string,
    private readonly link: DeviceLink,
    opts: { /** the stage's topic root (default `oc`) */ topicRoot?: string } = {},
  ) {
    this.topics = topicsUnder(opts.topicRoot ?? DEFAULT_TOPIC_ROOT);
    link.onMessage((topic, payload) => {
      const viaReply = topic.endsWith(`/in/reply/${domain}/${deviceId}`);
      if (!viaReply && !topic.endsWith('/in/grant')) return;
      const g = (viaReply ? (payload as { grant?: Partial<Grant> } | null)?.grant : payload) as Partial<Grant> | null | undefined;
      if (!g || typeof g.obligationId !== 'string' || this.delivered.has(g.obligationId)) return;
      const grant: Grant = {
        obligationId: g.obligationId,
        consumer: String(g.consumer),
        service: String(g.service),
        amount: Number(g.amount),
      };
      this.delivered.set(grant.obligationId, grant);
      for (const l of this.listeners) l(grant);
    });
  }

  get id(): string {
    return this.deviceId;
  }

  onGrant(listener: (g: Grant) => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    await this.link.connect();
    await this.link.subscribe(this.topics.inbox(this.domain, this.deviceId), 1);
    await this.link.subscribe(this.topics.grantsFor(this.domain, this.deviceId), 1);
  }

  close(): Promise<void> {
    return this.link.close();
  }
}
