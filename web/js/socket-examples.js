// The live socket examples of docs.html (#sockets). Each example is a function of this file;
// the page shows its body as the example's code, so what is shown is exactly what runs, with
// HOST and PORT those of this relay's echo servers (from api/targets, when Run is pressed).
import { socket, AF_INET, SOCK_STREAM, UDPSocket } from "../pkg/socket.js";

/** The tutorial's TCP client, in the Python-style layer. */
async function tcpClient(HOST, PORT, print) {
  const s = socket.socket(AF_INET, SOCK_STREAM);
  await s.connect([HOST, PORT]);
  await s.sendall(new TextEncoder().encode("Hello, world"));
  const data = await s.recv(1024);
  s.close();
  print(`Received ${new TextDecoder().decode(data)}`);
}

/** A UDP client: one datagram to the UDP echo and the one that comes back. */
async function udpClient(HOST, PORT, print) {
  const udp = new UDPSocket({ remoteAddress: HOST, remotePort: PORT });
  const { readable, writable } = await udp.opened;
  await writable.getWriter().write({ data: new TextEncoder().encode("Hello, UDP") });
  const { value } = await readable.getReader().read();
  await udp.close();
  print(`Received ${value.data.length} bytes: ${new TextDecoder().decode(value.data)}`);
}

/** The body of `fn`, dedented, as the example's code. */
function body(fn) {
  const lines = fn.toString().split("\n").slice(1, -1);
  return lines.map((line) => line.replace(/^ {2}/, "")).join("\n");
}

/** [host, port] of the relay's target named `name` (from api/targets), or null. Asked on
 * Run, not on load: this page also works from a plain static server, which has no API. */
async function find(name) {
  const response = await fetch(`api/targets${location.search}`);
  const targets = response.ok ? await response.json() : [];
  const entry = targets.find((t) => t.name === name);
  if (!entry) return null;
  const address = entry.target.replace(/^udp:/, "");
  const at = address.lastIndexOf(":");
  return [address.slice(0, at), Number(address.slice(at + 1))];
}

/** The example's code for `fn` with HOST and PORT. */
function shown(fn, host, port) {
  return `const HOST = ${JSON.stringify(host)}, PORT = ${port};\n` + body(fn);
}

for (const [id, fn, name] of [
  ["tcp-example", tcpClient, "echo"],
  ["udp-example", udpClient, "udp-echo"],
]) {
  const code = document.getElementById(`${id}-code`);
  const run = document.getElementById(`${id}-run`);
  const out = document.getElementById(`${id}-out`);
  // The relay's default echo port until Run asks the relay for its own.
  code.textContent = shown(fn, "127.0.0.1", 65432);
  run.disabled = false;
  run.addEventListener("click", async () => {
    out.textContent = "…";
    try {
      const target = await find(name);
      if (!target) {
        out.textContent = `No relay here lists a ${name} target: open this page from sockrelay.`;
        return;
      }
      code.textContent = shown(fn, ...target);
      await fn(...target, (line) => { out.textContent = line; });
    } catch (error) {
      out.textContent = `${error.name}: ${error.message}`;
    }
  });
}
