// Admin screens: trust with other companies.

import { call } from "./api.js";
import { el, errorText, panel } from "./dom.js";
import { renderRoomList } from "./rooms.js";
import { state } from "./state.js";

const TRUST_STATES = { active: "Active", pending_ours: "Waiting for them", pending_theirs: "Waiting for us" };

/** The companies this one trusts or is trusted by, with authorize and withdraw. */
export async function openTrusts() {
  state.current = null;
  renderRoomList();
  const error = el("p", { id: "trusts-error", class: "error", role: "alert" });
  const list = el("ul", { id: "trusts", class: "contacts", "aria-label": "Trusted companies" });
  const input = el("input", { id: "trust-tenant", name: "tenant", autocomplete: "off" });
  const form = el(
    "form",
    { class: "inline" },
    el("label", { for: "trust-tenant" }, "Company id"),
    input,
    el("button", { type: "submit" }, "Authorize"),
  );
  const token = state.session.token;
  const refresh = async () => {
    try {
      const answer = await call("GET", "/v1/admin/trusts", { token });
      list.replaceChildren(
        ...(answer.trusts || []).map((trust) => {
          const withdraw = el("button", { type: "button" }, `Withdraw trust in ${trust.tenant}`);
          withdraw.addEventListener("click", async () => {
            error.textContent = "";
            try {
              await call("DELETE", `/v1/admin/trusts/${encodeURIComponent(trust.tenant)}`, { token });
              await refresh();
            } catch (err) {
              error.textContent = errorText(err);
            }
          });
          const ours = trust.status !== "pending_theirs";
          return el("li", {}, el("span", { class: "title" }, trust.tenant), el("span", {}, TRUST_STATES[trust.status] || trust.status), ours ? withdraw : null);
        }),
      );
      if (!list.children.length) list.append(el("li", { class: "hint" }, "No trust with another company."));
    } catch (err) {
      error.textContent = errorText(err);
    }
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await call("POST", "/v1/admin/trusts", { token, body: { tenant: input.value.trim() } });
      input.value = "";
      await refresh();
    } catch (err) {
      error.textContent = errorText(err);
    }
  });
  panel().replaceChildren(el("h2", { id: "room-title" }, "Trusted companies"), error, form, list);
  await refresh();
}

