// stigmer console: the little the pages need beyond HTML. No inline script is allowed (the
// Content-Security-Policy says so); everything hooks on data- attributes.
"use strict";

// Timeline bars: offset and width are thousandths of the run.
function drawBars(root) {
  root.querySelectorAll(".bar[data-offset]").forEach((bar) => {
    bar.style.marginLeft = Number(bar.dataset.offset) / 10 + "%";
    bar.style.width = Number(bar.dataset.width) / 10 + "%";
  });
  root.querySelectorAll(".indent[data-depth]").forEach((indent) => {
    indent.style.width = Number(indent.dataset.depth) * 1.2 + "em";
  });
}

// Forms that ask first.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// A running execution's page follows it: the server says when it moved (Server-Sent Events),
// and the page takes the part that changed, rendered by the server, in place.
function follow(section) {
  const source = new EventSource(section.dataset.live);
  let fetching = false;
  let again = false;
  const refresh = async () => {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const response = await fetch(section.dataset.fragment, { credentials: "same-origin" });
      // An ended session answers with the login page: show it whole, not inside this one.
      if (response.redirected) {
        source.close();
        window.location.reload();
        return;
      }
      if (response.ok) {
        section.innerHTML = await response.text();
        drawBars(section);
      }
    } finally {
      fetching = false;
      if (again) { again = false; refresh(); }
    }
  };
  const following = document.getElementById("following");
  source.addEventListener("open", () => { if (following) following.hidden = false; });
  source.addEventListener("update", refresh);
  source.addEventListener("end", () => {
    source.close();
    if (following) following.remove();
    section.dataset.ended = "true";
    document.querySelectorAll("[data-while-live]").forEach((element) => element.remove());
    refresh();
  });
  source.addEventListener("failure", () => source.close());
}

document.addEventListener("DOMContentLoaded", () => {
  drawBars(document);
  const live = document.querySelector("[data-live]");
  if (live) {
    follow(live);
  }
});
