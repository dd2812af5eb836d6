// web/pkg as a docs build gets it: `npm pack` of the folder, installed from the tarball into a
// fresh project under target/ (offline: the package has no dependencies, so npm needs nothing
// from the registry). Shared by tests/node/package.test.mjs and tests/browser/embed.test.mjs.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const PKG = join(ROOT, "web", "pkg");
export const NAME = "sockrelay-inet";

const npm = (args, cwd) =>
  execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });

/**
 * Packs web/pkg and installs the tarball into a new project with `files` written into it
 * (name to text). Returns `{ dir, tarball, files, remove }`; `files` lists what the tarball holds.
 */
export function installPacked(files = {}) {
  const base = join(ROOT, "target", "pack-tests");
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, "project-"));
  const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", dir], PKG));
  const tarball = join(dir, packed[0].filename);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "docs-site", private: true, type: "module" }, null, 2),
  );
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  npm(["install", "--offline", "--no-package-lock", tarball], dir);
  return {
    dir,
    tarball,
    files: packed[0].files.map((f) => f.path).sort(),
    installed: readdirSync(join(dir, "node_modules", NAME)).sort(),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
