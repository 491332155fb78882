// Which webhook URLs the server may post to (SSRF protection). A URL must be
// https, or http to an allowed host; every address its host resolves to must
// be public, or allowed by ROOKERY_WEBHOOK_ALLOW_HOSTS. The decision is made
// from the URL and the resolved addresses before any connection: at Submit,
// before every attempt, and again in the connection's own lookup (so a name
// that resolves differently by then is refused too). Redirects are never
// followed (post.ts).
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from "node:dns";
import { BlockList, isIP } from "node:net";

/** Loopback, private, shared, link-local (cloud metadata included), multicast and reserved ranges. */
const NOT_PUBLIC: [string, number, "ipv4" | "ipv6"][] = [
  ["0.0.0.0", 8, "ipv4"],
  ["10.0.0.0", 8, "ipv4"],
  ["100.64.0.0", 10, "ipv4"],
  ["127.0.0.0", 8, "ipv4"],
  ["169.254.0.0", 16, "ipv4"],
  ["172.16.0.0", 12, "ipv4"],
  ["192.0.0.0", 24, "ipv4"],
  ["192.168.0.0", 16, "ipv4"],
  ["198.18.0.0", 15, "ipv4"],
  ["224.0.0.0", 3, "ipv4"], // multicast and reserved, through 255.255.255.255
  ["::", 128, "ipv6"],
  ["::1", 128, "ipv6"],
  ["64:ff9b::", 96, "ipv6"], // NAT64
  ["fc00::", 7, "ipv6"], // unique local (fd00:ec2::254, a metadata address, included)
  ["fe80::", 10, "ipv6"],
  ["ff00::", 8, "ipv6"],
];

// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) need no rule: BlockList checks them against the IPv4 rules.
const notPublic = new BlockList();
for (const [network, prefix, family] of NOT_PUBLIC) notPublic.addSubnet(network, prefix, family);

export type Resolve = (hostname: string) => Promise<LookupAddress[]>;

const systemResolve: Resolve = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** Verdicts kept on URLs whose host is an IP address (they need no DNS, so they never change). */
const VERDICTS_KEPT = 1_000;

export class WebhookUrlGuard {
  private readonly hosts = new Set<string>();
  private readonly ranges = new BlockList();
  private readonly literalVerdicts = new Map<string, string | undefined>();

  /** `allow`: host names, IP addresses and CIDR ranges (ROOKERY_WEBHOOK_ALLOW_HOSTS). */
  constructor(
    allow: string[],
    private readonly resolve: Resolve = systemResolve,
  ) {
    for (const entry of allow) {
      const [address, prefix] = entry.split("/");
      const family = isIP(address ?? "");
      if (family === 0) this.hosts.add(entry.toLowerCase());
      else if (prefix === undefined) this.ranges.addAddress(address!, family === 4 ? "ipv4" : "ipv6");
      else this.ranges.addSubnet(address!, Number(prefix), family === 4 ? "ipv4" : "ipv6");
    }
  }

  /** Why the server may not post to `url`, or undefined when it may. Resolves the host. */
  async refusal(url: string): Promise<string | undefined> {
    if (this.literalVerdicts.has(url)) return this.literalVerdicts.get(url);
    const verdict = await this.decide(url);
    if (isIP(hostOfText(url))) {
      if (this.literalVerdicts.size >= VERDICTS_KEPT) this.literalVerdicts.clear();
      this.literalVerdicts.set(url, verdict);
    }
    return verdict;
  }

  private async decide(url: string): Promise<string | undefined> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return "is not a URL";
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return "must be an https (or http) URL";
    if (parsed.username || parsed.password) return "must not carry credentials";
    const host = hostOf(parsed);
    const hostAllowed = this.hosts.has(host);
    if (parsed.protocol === "http:" && !hostAllowed && !(isIP(host) && this.rangeAllows(host))) {
      return `must be https: plain http only to a host ROOKERY_WEBHOOK_ALLOW_HOSTS allows ("${host}" is not)`;
    }
    if (hostAllowed) return undefined;
    let addresses: LookupAddress[];
    if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
    else {
      try {
        addresses = await this.resolve(host);
      } catch (error) {
        return `host "${host}" does not resolve (${(error as NodeJS.ErrnoException).code ?? "error"})`;
      }
    }
    const refused = addresses.find((a) => !this.addressAllowed(a.address));
    return refused
      ? `"${host}" is (or resolves to) ${refused.address}, a loopback, private, link-local or reserved address; allow it with ROOKERY_WEBHOOK_ALLOW_HOSTS`
      : undefined;
  }

  /**
   * A `lookup` for http.request: resolves as dns.lookup does but fails, before any
   * connection, when the name resolves to an address the guard refuses.
   */
  readonly lookup = (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    const allowedName = this.hosts.has(hostname.toLowerCase());
    this.resolve(hostname).then(
      (addresses) => {
        const refused = allowedName ? undefined : addresses.find((a) => !this.addressAllowed(a.address));
        if (refused) {
          callback(
            Object.assign(new Error(`refused: "${hostname}" resolves to ${refused.address}, which webhooks may not reach`), {
              code: "EREFUSED",
            }),
            "",
          );
          return;
        }
        const usable = options.family ? addresses.filter((a) => a.family === options.family) : addresses;
        if (options.all) callback(null, usable);
        else callback(null, usable[0]?.address ?? "", usable[0]?.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, ""),
    );
  };

  private addressAllowed(address: string): boolean {
    return this.rangeAllows(address) || !notPublic.check(address, isIP(address) === 4 ? "ipv4" : "ipv6");
  }

  private rangeAllows(address: string): boolean {
    return this.ranges.check(address, isIP(address) === 4 ? "ipv4" : "ipv6");
  }
}

/** The host of a URL given as text ("" when it is not a URL). */
function hostOfText(url: string): string {
  try {
    return hostOf(new URL(url));
  } catch {
    return "";
  }
}

/** The URL's host in lower case, without an IPv6 literal's brackets. */
function hostOf(url: URL): string {
  return url.hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
}
