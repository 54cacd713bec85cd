// The metrics page's charts: the figures come from the page (json_script "metrics-data"),
// the same ones as the tables beside them; without Chart.js the tables still say it all.
(function () {
  "use strict";
  var source = document.getElementById("metrics-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  var common = {
    responsive: true,
    maintainAspectRatio: false,
    animation: still ? false : undefined,
    interaction: { mode: "index", intersect: false },
  };

  var weekly = document.getElementById("chart-weekly");
  if (weekly) {
    new window.Chart(weekly, {
      type: "line",
      data: {
        labels: data.weekly.labels,
        datasets: [
          { label: "Reported", data: data.weekly.reported, borderColor: "#0d6efd", backgroundColor: "#0d6efd" },
          { label: "Resolved", data: data.weekly.resolved, borderColor: "#198754", backgroundColor: "#198754" },
          { label: "Open at week's end", data: data.weekly.open, borderColor: "#dc3545", backgroundColor: "#dc3545", borderDash: [6, 4] },
        ],
      },
      options: Object.assign({}, common, { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }),
    });
  }

  var times = document.getElementById("chart-times");
  if (times) {
    new window.Chart(times, {
      type: "bar",
      data: {
        labels: data.times.labels,
        datasets: [
          { label: "Acknowledge, median", data: data.times.acknowledge_median, backgroundColor: "#6ea8fe" },
          { label: "Acknowledge, 90th percentile", data: data.times.acknowledge_p90, backgroundColor: "#0a58ca" },
          { label: "Resolve, median", data: data.times.resolve_median, backgroundColor: "#75b798" },
          { label: "Resolve, 90th percentile", data: data.times.resolve_p90, backgroundColor: "#146c43" },
        ],
      },
      options: Object.assign({}, common, { scales: { y: { beginAtZero: true, title: { display: true, text: "hours" } } } }),
    });
  }
})();
