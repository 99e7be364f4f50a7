// The status page's behaviour: live sections from /events (Server-Sent Events), ticking clocks, and the actions.
// The server renders every section (app/web/render.py); this script only swaps them in. No inline script anywhere.
"use strict";

(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") || "";
  const ORDER = ["banner", "session", "pairing", "qr", "health", "storage", "history"];
  const applied = new Map(); // section -> the HTML last swapped in (clocks blanked, see stable())
  let clockOffset = 0; // server time minus this browser's time, so ages are right even with a wrong phone clock
  let source = null;

  const $ = (selector, root = document) => root.querySelector(selector);
  const now = () => Date.now() + clockOffset;

  // ---- durations, as app/web/render.py writes them -----------------------------------------------------------

  function span(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    if (seconds < 86400) {
      const hours = Math.floor(seconds / 3600);
      const minutes = Math.floor((seconds % 3600) / 60);
      return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
    }
    const days = Math.floor(seconds / 86400);
    const hours = Math.floor((seconds % 86400) / 3600);
    return hours ? `${days} d ${hours} h` : `${days} d`;
  }

  // A moment in this browser's time zone: the time alone today, with the date otherwise.
  function localTime(moment) {
    const time = moment.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (moment.toDateString() === new Date(now()).toDateString()) return time;
    return `${moment.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" })}, ${time}`;
  }

  function tick() {
    for (const element of document.querySelectorAll("time[data-since]")) {
      const age = (now() - Date.parse(element.dataset.since)) / 1000;
      element.textContent = element.classList.contains("bare") ? span(age) : `${span(age)} ago`;
      if (element.dataset.staleAfter) {
        element.classList.toggle("stale", age > Number(element.dataset.staleAfter));
      }
    }
    for (const element of document.querySelectorAll("time[data-until]")) {
      const left = (Date.parse(element.dataset.until) - now()) / 1000;
      element.textContent = left > 0 ? `in ${span(left)}` : element.dataset.done || "now";
    }
    for (const element of document.querySelectorAll("time.local[datetime]")) {
      const moment = new Date(element.getAttribute("datetime"));
      element.textContent = localTime(moment);
      element.title = moment.toLocaleString([], { dateStyle: "full", timeStyle: "long" });
    }
  }

  // ---- live sections ----------------------------------------------------------------------------------------

  // A section whose only change is the text of its clocks ("12 s ago") is left alone: the clocks tick here, and a
  // button or a half-typed phone number is not replaced under the operator's finger every few seconds.
  const stable = (html) => html.replace(/(<time\b[^>]*>)[^<]*(<\/time>)/g, "$1$2");

  function apply(message) {
    if (message.now) clockOffset = Date.parse(message.now) - Date.now();
    for (const name of ORDER) {
      const html = message.sections?.[name];
      if (html === undefined || applied.get(name) === stable(html)) continue;
      const element = document.getElementById(name);
      if (!element) continue;
      element.innerHTML = html;
      applied.set(name, stable(html));
      if (element.tagName === "SECTION") element.hidden = html === "";
      if (name === "pairing") applied.delete("qr"); // a fresh, empty QR box: fill it again below
    }
    document.body.dataset.state = message.state || "";
    tick();
  }

  function setLive(text, ok) {
    const live = $("#live");
    if (!live) return;
    live.textContent = text;
    live.classList.toggle("ok", ok);
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/events");
    source.addEventListener("page", (event) => {
      setLive("live", true);
      apply(JSON.parse(event.data));
    });
    source.addEventListener("error", async () => {
      setLive("reconnecting…", false);
      // EventSource hides the status code: ask the API whether we are still signed in.
      try {
        const response = await fetch("/api/status", { credentials: "same-origin" });
        if (response.status === 401) {
          window.location.assign("/login");
          return;
        }
      } catch (error) {
        /* the server is away: EventSource keeps retrying */
      }
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
    });
  }

  // ---- actions ----------------------------------------------------------------------------------------------

  let toastTimer = null;
  function toast(text, bad = false) {
    const element = $("#toast");
    if (!element) return;
    element.textContent = text;
    element.classList.toggle("bad", bad);
    element.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (element.hidden = true), bad ? 8000 : 4000);
  }

  async function post(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {}),
    });
    if (response.status === 401) {
      window.location.assign("/login");
      throw new Error("signed out");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || `${response.status} ${response.statusText}`);
    return data;
  }

  async function run(button, path, done) {
    button.disabled = true;
    try {
      await post(path);
      toast(done);
    } catch (error) {
      toast(error.message, true);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const dialog = $("#logout-dialog");
    switch (button.dataset.action) {
      case "reconnect":
        await run(button, "/api/session/reconnect", "Reconnecting…");
        break;
      case "pair":
        await run(button, "/api/session/pair", "Starting a new QR round…");
        break;
      case "logout":
        $(".dialog-account", dialog).textContent = button.dataset.account || "this account";
        dialog.showModal();
        break;
      case "cancel":
        dialog.close();
        break;
      case "confirm-logout":
        await run(button, "/api/session/logout", "Logged out of WhatsApp.");
        dialog.close();
        break;
    }
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.id !== "pair-code-form") return;
    event.preventDefault();
    const error = $(".form-error", form);
    const result = $(".pair-code", form.parentElement);
    const button = $("button", form);
    error.hidden = true;
    button.disabled = true;
    try {
      const data = await post("/api/session/pair-code", { phone: form.elements.phone.value.trim() });
      const code = String(data.code);
      $(".code", result).textContent = code.length === 8 ? `${code.slice(0, 4)}-${code.slice(4)}` : code;
      result.hidden = false;
    } catch (problem) {
      error.textContent = problem.message;
      error.hidden = false;
      result.hidden = true;
    } finally {
      button.disabled = false;
    }
  });

  tick();
  setInterval(tick, 1000);
  connect();
})();
