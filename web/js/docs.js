// The live examples of docs.html. Each `form.try[data-call]` names a function of inet.js and
// its fields are the arguments; on every edit the call, its result or the error it threw is
// shown. The conversions are the module's; this file only reads fields and prints values.

const status = document.getElementById("status");

// Imported dynamically so that a missing or broken module is reported on the page instead of
// failing this script before it can say anything.
let inet;
try {
  const started = performance.now();
  inet = await import("../pkg/inet.js");
  await inet.default();
  const ms = Math.round(performance.now() - started);
  status.dataset.state = "ready";
  status.textContent = "Module loaded: the examples below run it as you type.";
  show(document.getElementById("init-out"), `ready in ${ms} ms.`);
  show(
    document.getElementById("constants-out"),
    `AF_INET === ${inet.AF_INET}, AF_INET6 === ${inet.AF_INET6}`,
  );
} catch (error) {
  status.dataset.state = "failed";
  status.textContent = `The module did not load (${error}); build it with wasm/build.sh. ` +
    "The reference below still applies.";
}

const FAMILIES = { 2: "AF_INET", 10: "AF_INET6" };

/** The arguments of each function, read from its form. */
const ARGUMENTS = {
  inet_aton: (f) => [f.ip_string.value],
  inet_ntoa: (f) => [bytes(f.packed_ip.value)],
  inet_pton: (f) => [Number(f.address_family.value), f.ip_string.value],
  inet_ntop: (f) => [Number(f.address_family.value), bytes(f.packed_ip.value)],
  getservbyname: (f) => optional([f.service_name.value, f.protocol_name.value]),
  getservbyport: (f) => optional([integer(f.port.value), f.protocol_name.value]),
  address_facts: (f) => [f.address.value],
  subnet: (f) => [f.cidr.value],
};

/** Thrown for text the page cannot turn into an argument, before the module is called. */
class InputError extends Error {}

/** "192, 168, 0x01 190" as a Uint8Array. */
function bytes(text) {
  const parts = text.split(/[\s,[\]]+/).filter(Boolean);
  return Uint8Array.from(parts, (part) => {
    const value = /^(0x[0-9a-f]+|\d+)$/i.test(part) ? Number(part) : NaN;
    if (!(value <= 255)) throw new InputError(`${JSON.stringify(part)} is not a byte (0 to 255)`);
    return value;
  });
}

/** An integer if the text is one; otherwise the text itself, which Python would reject too. */
function integer(text) {
  return /^\s*-?\d+\s*$/.test(text) ? Number(text) : text;
}

/** An empty last field is an argument left out. */
function optional(args) {
  return args.at(-1) === "" ? args.slice(0, -1) : args;
}

/** A value as JavaScript source would write it. */
function literal(value, index, call) {
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof Uint8Array) return `new Uint8Array([${value.join(", ")}])`;
  if (index === 0 && call.startsWith("inet_") && FAMILIES[value]) return FAMILIES[value];
  return String(value);
}

/** A result as the console would show it, with Python's repr of bytes alongside. */
function describe(value) {
  if (value instanceof Uint8Array) {
    const text = value.length === 4 ? inet.inet_ntoa(value) : inet.inet_ntop(inet.AF_INET6, value);
    return [["", array(value)], ["Python", inet.address_facts(text).python_bytes]];
  }
  if (value !== null && typeof value === "object") {
    return Object.entries(value).map(([key, item]) => {
      if (item instanceof Uint8Array) return [key, array(item)];
      if (key === "family") return [key, `${item} (${FAMILIES[item]})`];
      // A table of fields, not source: strings as they are (python_bytes reads as Python).
      return [key, String(item)];
    });
  }
  return [["", literal(value, 1, "")]];
}

function array(bytes) {
  return `Uint8Array(${bytes.length}) [${bytes.join(", ")}]`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

function show(output, text, state = "ok") {
  output.dataset.state = state;
  output.textContent = text;
}

/** Runs one form's call and shows the call, then its result or the error it threw. */
function run(form) {
  const output = form.querySelector("output");
  if (!inet) return show(output, "The module is not loaded.", "error");
  const call = form.dataset.call;
  const head = element("code", "call", `${call}(…)`);
  try {
    const args = ARGUMENTS[call](form.elements);
    head.textContent = `${call}(${args.map((a, i) => literal(a, i, call)).join(", ")})`;
    const rows = document.createElement("dl");
    for (const [key, text] of describe(inet[call](...args))) {
      // Python bytes literals have no natural break points (the byte 0x20 is a space in them).
      const dd = element("dd", /python/i.test(key) ? "anywhere" : "", text);
      rows.append(element("dt", key ? "" : "arrow", key || "→"), dd);
    }
    output.dataset.state = "ok";
    output.replaceChildren(head, rows);
  } catch (error) {
    const line = element("p", "error", "");
    if (error instanceof InputError) {
      line.textContent = `Not called: ${error.message}`;
    } else {
      line.append(element("strong", "", error.name), `: ${error.message}`);
    }
    output.dataset.state = "error";
    output.replaceChildren(head, line);
  }
}

for (const form of document.querySelectorAll("form.try[data-call]")) {
  form.addEventListener("input", () => run(form));
  form.addEventListener("change", () => run(form));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(form);
  });
  form.addEventListener("click", (event) => {
    const example = event.target.closest("button[type=button]");
    if (!example) return;
    for (const [name, value] of Object.entries(example.dataset)) form.elements[name].value = value;
    run(form);
  });
  run(form);
}

// initSync on a second, separate instance of the module (a distinct URL is a distinct module),
// so the demonstration does not disturb the copy the page uses.
document.getElementById("init-sync").addEventListener("click", async () => {
  const output = document.getElementById("init-sync-out");
  try {
    const response = await fetch(new URL("../pkg/inet_bg.wasm", import.meta.url));
    if (!response.ok) throw new Error(`fetching inet_bg.wasm: HTTP ${response.status}`);
    const wasm = await response.arrayBuffer();
    const copy = await import("../pkg/inet.js?second-copy");
    const started = performance.now();
    copy.initSync({ module: wasm });
    const ms = (performance.now() - started).toFixed(1);
    const answer = copy.inet_ntoa(copy.inet_aton("127.1"));
    show(output, `${wasm.byteLength} bytes instantiated in ${ms} ms; ` +
      `its inet_ntoa(inet_aton("127.1")) is ${JSON.stringify(answer)}.`);
  } catch (error) {
    show(output, `${error.name}: ${error.message}`, "error");
  }
});

// Copy buttons copy the snippet named by data-copy and say so in the status beside them.
for (const button of document.querySelectorAll("button.copy")) {
  const snippet = document.getElementById(button.dataset.copy);
  const said = button.parentElement.querySelector("[role=status]");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(snippet.textContent);
      said.textContent = "Copied";
    } catch {
      // No clipboard access (an insecure origin, or permission refused): select it instead.
      getSelection().selectAllChildren(snippet);
      said.textContent = "Selected: press Ctrl+C";
    }
    clearTimeout(button.timer);
    button.timer = setTimeout(() => (said.textContent = ""), 3000);
  });
}

// The embedding snippets name the origin that serves this page, whose /pkg/ they import (a
// file: URL keeps the placeholder).
if (/^https?:$/.test(location.protocol)) {
  for (const origin of document.querySelectorAll("pre .origin")) origin.textContent = location.origin;
}
