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
  });
})();
