// The chart specification is asked for only when the chosen output form is a figure.
// Without JavaScript every field stays shown; the platform ignores the chart otherwise.
(function () {
  const chart = document.getElementById("chart-spec");
  const forms = document.querySelectorAll("#output-forms input[name=form]");
  if (!chart || !forms.length) return;
  function show() {
    const chosen = document.querySelector("#output-forms input[name=form]:checked");
    chart.hidden = !chosen || chosen.value !== "figure";
  }
  forms.forEach(function (input) { input.addEventListener("change", show); });
  show();
})();
