// Live completeness help (Wuxi Art.15(1)-(2)): send the application form, as filled in,
// to the server's missing_items check and show what is still missing. Nothing is saved.
(function () {
  const form = document.getElementById("application-form");
  const box = document.getElementById("missing");
  if (!form || !box) return;
  let timer = null;
  async function check() {
    const response = await fetch("/researcher/applications/check", {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
    });
    if (response.ok) box.innerHTML = await response.text();
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
