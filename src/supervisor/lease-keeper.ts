// Keeps one run's lease alive: renews it every leaseMs/3 and calls `onLost`
// once when the store says the lease is gone (taken over, or the task was
// cancelled) or when it could not be renewed before it expired (the store
// failed, or did not answer).
export interface LeaseKeeperOptions {
  /** Extends the lease to `expiresAt`; false when it is no longer held. */
  renew: (expiresAt: Date) => Promise<boolean>;
  leaseMs: number;
  expiresAt: Date;
  onLost: (why: string) => void;
  onError?: (error: unknown) => void;
}

export class LeaseKeeper {
  private readonly timer: NodeJS.Timeout;
  private expiresAt: Date;
  private stopped = false;
  private renewing = false;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.expiresAt = options.expiresAt;
    this.timer = setInterval(() => void this.renew(), Math.max(10, Math.floor(options.leaseMs / 3)));
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    if (this.renewing) {
      // A store that hangs rather than fails (a MongoDB that stopped answering; a commit the
      // renewal waits behind): past the lease another process may take the task, so this run
      // stops too instead of running on, alongside it, until the store answers.
      if (Date.now() >= this.expiresAt.getTime()) this.lose("the lease expired while its renewal went unanswered");
      return;
    }
    this.renewing = true;
    const next = new Date(Date.now() + this.options.leaseMs);
    try {
      const held = await this.options.renew(next);
      if (this.stopped) return;
      if (held) this.expiresAt = next;
      else this.lose("the lease was taken over or the task left RUNNING");
    } catch (error) {
      this.options.onError?.(error);
      if (!this.stopped && Date.now() >= this.expiresAt.getTime()) this.lose("the lease expired while the store was unreachable");
    } finally {
      this.renewing = false;
    }
  }

  private lose(why: string): void {
    this.stop();
    this.options.onLost(why);
  }
}
