import { describe, expect, it } from "vitest";
import { LeaseKeeper } from "./lease-keeper.js";

const LEASE_MS = 90;

function keep(renew: () => Promise<boolean>) {
  const lost: string[] = [];
  const keeper = new LeaseKeeper({ renew, leaseMs: LEASE_MS, expiresAt: new Date(Date.now() + LEASE_MS), onLost: (why) => lost.push(why) });
  return { keeper, lost };
}

describe("LeaseKeeper", () => {
  it("should keep the lease while the store answers each renewal", async () => {
    let renewals = 0;
    const { keeper, lost } = keep(async () => {
      renewals++;
      return true;
    });
    try {
      // Ten renewals span more than three leases.
      await expect.poll(() => renewals, { timeout: 10_000, interval: 20 }).toBeGreaterThanOrEqual(10);
      expect(lost).toEqual([]);
    } finally {
      keeper.stop();
    }
  });

  it("should give the lease up once it expired while a renewal went unanswered (a store that hangs)", async () => {
    const { keeper, lost } = keep(() => new Promise<boolean>(() => undefined));
    try {
      await expect.poll(() => lost, { timeout: 10_000, interval: 20 }).toEqual(["the lease expired while its renewal went unanswered"]);
    } finally {
      keeper.stop();
    }
  });

  it("should give the lease up when the store says another holder has it", async () => {
    const { keeper, lost } = keep(async () => false);
    try {
      await expect.poll(() => lost, { timeout: 10_000, interval: 20 }).toEqual(["the lease was taken over or the task left RUNNING"]);
    } finally {
      keeper.stop();
    }
  });
});
