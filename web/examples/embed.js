// The script of embed.html. In a page of your own it can as well be inline; the relay serves
// its pages with a Content-Security-Policy that allows scripts from files only.
import init, { inet_aton, inet_ntoa } from "../pkg/inet.js";

await init();
document.getElementById("out").textContent = inet_ntoa(inet_aton("127.1"));
