// The console's one script: copy buttons, confirmations before destructive buttons, and the
// Live page's refresh. The pages work without it (confirmation pages exist on the server).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain HTTP on another host: no clipboard API; select a hidden textarea and copy that.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

document.addEventListener("click", async (event) => {
  const copy = event.target.closest("button[data-copy]");
  if (copy) {
    const source = document.querySelector(copy.dataset.copy);
    if (!source) return;
    const label = copy.textContent;
    try {
      await copyText(source.textContent);
      copy.textContent = "Copied";
      copy.classList.add("copied");
    } catch {
      copy.textContent = "Select and copy by hand";
    }
    setTimeout(() => {
      copy.textContent = label;
      copy.classList.remove("copied");
    }, 2000);
    return;
  }
  const confirmed = event.target.closest("[data-confirm]");
  if (confirmed && !window.confirm(confirmed.dataset.confirm)) {
    event.preventDefault();
  }
});

// Live: fetch the panels again every few seconds and swap them in.
const live = document.querySelector("[data-refresh]");
if (live) {
  const every = Math.max(1, Number(live.dataset.every || 3)) * 1000;
  const status = document.getElementById("live-status");
  const refresh = async () => {
    try {
      const response = await fetch(live.dataset.refresh, {
        headers: { "x-csrf-token": csrfToken() },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.redirected || response.status === 401) {
        status.textContent = "Session ended: reload to log in.";
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      live.innerHTML = await response.text();
      status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      status.textContent = `Could not refresh (${err.message}); trying again.`;
    }
    setTimeout(refresh, every);
  };
  setTimeout(refresh, every);
}
