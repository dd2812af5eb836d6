// Starts the client module of index.html (a file, not an inline script, so that the relay's
// Content-Security-Policy can forbid inline code). The client itself is Rust: wasm/client.
import init from "../pkg/client.js";

const status = document.getElementById("status");

function stopped(why) {
  status.dataset.state = "closed";
  status.textContent = `The client stopped (${why}). Reload the page to start again.`;
}

try {
  await init();
} catch (error) {
  stopped(`it could not start: ${error}`);
}
// A trap in the module leaves it unusable: say so rather than look frozen.
addEventListener("error", (event) => {
  if (event.error instanceof WebAssembly.RuntimeError) stopped(event.error.message);
});
