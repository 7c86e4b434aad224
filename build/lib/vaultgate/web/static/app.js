// Small page behaviours, no build step: copy buttons and the checkout form.
"use strict";

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  try {
    await navigator.clipboard.writeText(button.dataset.copy);
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  } catch {
    button.textContent = "Select and copy";
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-checkout]");
  if (!form) return;
  event.preventDefault();
  const session = await fetch("/api/auth/session").then((r) => r.json());
  const cents = Math.round(Number(form.amount.value) * 100);
  const response = await fetch("/api/billing/checkout", {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": session.csrf_token },
    body: JSON.stringify({ amount_cents: cents }),
  });
  const body = await response.json();
  if (response.ok) window.location.assign(body.url);
  else alert(body.error ? body.error.message : "Checkout failed");
});
