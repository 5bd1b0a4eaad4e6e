// Progressive enhancement only: every page works without it.
// 1. Sections with data-refresh reload their contents every 5 s (from the server's shared cache).
// 2. Buttons in forms of class "danger" ask before acting.
(() => {
  for (const section of document.querySelectorAll("[data-refresh]")) {
    const url = section.getAttribute("data-refresh");
    setInterval(async () => {
      if (document.hidden) return;
      try {
        const response = await fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
        if (response.ok) section.innerHTML = await response.text();
      } catch { /* keep the last counts; the next tick tries again */ }
    }, 5000);
  }
  document.addEventListener("submit", event => {
    const button = event.submitter;
    if (button && button.classList.contains("danger") && !confirm(button.textContent.trim() + "?")) event.preventDefault();
  });
})();
