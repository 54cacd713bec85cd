// IRMS page behaviour. No inline script anywhere: the Content-Security-Policy forbids it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Show exact times in the reader's own time zone (the server renders UTC).
  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  document.querySelectorAll("time[datetime]").forEach((el) => {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      el.title = fmt.format(when);
    }
  });

  // Forms marked data-confirm ask before they submit.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    });
  });
});
