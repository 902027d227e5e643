// Which data file backs each figure: once files are chosen, one row per PNG with a choice
// among the CSV/JSON files chosen with it. Without JavaScript the names are typed instead.
(function () {
  const input = document.getElementById("export-files");
  const rows = document.getElementById("figure-rows");
  if (!input || !rows) return;
  const labels = { figure: rows.querySelector("label").firstChild.textContent.trim(),
                   data: rows.querySelectorAll("label")[1].firstChild.textContent.trim() };
  input.addEventListener("change", function () {
    const names = Array.from(input.files).map(function (f) { return f.name; });
    const figures = names.filter(function (n) { return /\.png$/i.test(n); });
    const data = names.filter(function (n) { return /\.(csv|json)$/i.test(n); });
    rows.replaceChildren();
    figures.forEach(function (name) {
      const row = document.createElement("div");
      row.className = "row figure-row";
      const fig = document.createElement("label");
      fig.textContent = labels.figure + " ";
      const code = document.createElement("code");
      code.textContent = name;
      fig.appendChild(code);
      const hidden = document.createElement("input");
      hidden.type = "hidden"; hidden.name = "figure"; hidden.value = name;
      fig.appendChild(hidden);
      const pick = document.createElement("label");
      pick.textContent = labels.data + " ";
      const select = document.createElement("select");
      select.name = "figure_data";
      data.forEach(function (d) {
        const option = document.createElement("option");
        option.value = d; option.textContent = d;
        select.appendChild(option);
      });
      pick.appendChild(select);
      row.append(fig, pick);
      rows.appendChild(row);
    });
  });
})();
