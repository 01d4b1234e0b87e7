// The campaign page's results chart: Chart.js draws the numbers the page carries as JSON
// (json_script). The table beside it shows the same numbers, and is what works without
// JavaScript.
(function () {
  "use strict";

  const data = document.getElementById("results-chart-data");
  const canvas = document.getElementById("results-chart");
  if (!data || !canvas || !window.Chart) {
    return;
  }
  const chart = JSON.parse(data.textContent);
  const colours = ["#3056d3", "#0f9d8a", "#d9822b", "#8a4fd3", "#c2414f", "#5b6472"];

  // The page's own type (Chart.js draws its labels in Helvetica/Arial otherwise), in the
  // colour of the page's secondary text.
  const page = window.getComputedStyle(document.body);
  window.Chart.defaults.font.family = page.fontFamily;
  window.Chart.defaults.color = page.getPropertyValue("--bs-secondary-color").trim() || "#6c757d";

  // The results table under the chart (a broadcast's) starts and ends where the bars do, so
  // each of its equal columns sits under its bar: rapport.css pads its box by these.
  const table = document.querySelector("[data-results-table]");
  const alignTable = {
    id: "alignResultsTable",
    afterLayout: function (drawn) {
      const box = table && table.getBoundingClientRect();
      if (!box || !box.width) {
        return; // none, or hidden (phones get a grid instead)
      }
      const area = canvas.getBoundingClientRect();
      const left = area.left + drawn.chartArea.left - box.left;
      const right = box.right - (area.left + drawn.chartArea.right);
      table.style.setProperty("--results-plot-left", Math.max(left, 0) + "px");
      table.style.setProperty("--results-plot-right", Math.max(right, 0) + "px");
    },
  };

  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: chart.labels,
      datasets: chart.datasets.map(function (dataset, index) {
        return {
          label: dataset.label,
          data: dataset.data,
          backgroundColor: colours[index % colours.length],
          borderRadius: 4,
          maxBarThickness: 48,
        };
      }),
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      plugins: {
        legend: { display: chart.datasets.length > 1, position: "bottom" },
      },
      scales: {
        y: { beginAtZero: true, ticks: { precision: 0 } },
        x: { grid: { display: false } },
      },
    },
    plugins: [alignTable],
  });
})();
