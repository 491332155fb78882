// Client toolchains for the interop suite, installed from the registries by the
// tests themselves and cached under .cache/ (git-ignored): Go tools from the Go
// module proxy, a Python venv with grpcio from PyPI. Versions are pinned here.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const VERSIONS = {
  grpcurl: "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4",
  protocGenGo: "google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12",
  protocGenGoGrpc: "google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2",
  pythonPackages: ["grpcio==1.85.1", "grpcio-tools==1.85.1"],
};

const CACHE = resolve(".cache");

/** `go install`s a tool at a pinned version into .cache/go-bin/<version>/ and returns its path. */
export function goTool(moduleAtVersion: string): string {
  const [path, version] = moduleAtVersion.split("@") as [string, string];
  const name = path.split("/").pop()!;
  const dir = join(CACHE, "go-bin", `${name}-${version}`);
  const bin = join(dir, name);
  if (!existsSync(bin)) {
    execFileSync("go", ["install", moduleAtVersion], {
      env: { ...process.env, GOBIN: dir },
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 600_000,
    });
  }
  return bin;
}

/** A venv with the pinned Python packages; returns its python executable. */
export function pythonVenv(): string {
  const dir = join(CACHE, "venv");
  const python = join(dir, "bin", "python");
  const marker = join(dir, "installed.txt");
  const wanted = VERSIONS.pythonPackages.join(" ");
  if (!existsSync(marker) || execFileSync("cat", [marker]).toString() !== wanted) {
    mkdirSync(CACHE, { recursive: true });
    execFileSync("python3", ["-m", "venv", dir], { stdio: ["ignore", "ignore", "pipe"] });
    execFileSync(python, ["-m", "pip", "install", "--quiet", ...VERSIONS.pythonPackages], {
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 600_000,
    });
    writeFileSync(marker, wanted);
  }
  return python;
}

/** Runs `setup`; a missing toolchain fails under CI=true and skips (returns undefined) elsewhere. */
export function toolchain<T>(name: string, setup: () => T): { value?: T; missing?: string } {
  try {
    return { value: setup() };
  } catch (error) {
    const why = `${name} unavailable: ${(error as Error).message.split("\n")[0]}`;
    if (process.env.CI === "true") throw new Error(why);
    return { missing: why };
  }
}
