// A throwaway self-signed certificate for 127.0.0.1 and localhost, made by openssl in
// `dir` (the caller removes it), for servers under test that speak TLS.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface SelfSigned {
  /** Paths of the PEM certificate and its private key. */
  cert: string;
  key: string;
  /** The certificate's bytes: the CA a client trusts to reach the server. */
  ca: Buffer;
}

export function selfSignedCert(dir: string): SelfSigned {
  const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
  const subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"];
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", ...subject, "-keyout", key, "-out", cert], {
    stdio: "pipe",
  });
  return { cert, key, ca: readFileSync(cert) };
}
