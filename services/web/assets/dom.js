// Small DOM helpers shared by the client's views: elements built with DOM calls (never HTML
// from data), the API's refusals as text, and the panel the views draw into.

import { ApiError } from "./api.js";

/** Create an element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function errorText(err) {
  return err instanceof ApiError ? `${err.message} (${err.code})` : String(err);
}

/**
 * A destructive action asked first, on the page (never window.confirm): `show()` puts `box`
 * (which holds the confirm button and `no`) in place of `ask` and focuses `no`; `no` puts
 * `ask` back.
 */
export function confirmStep(ask, box, no) {
  no.addEventListener("click", () => {
    box.hidden = true;
    ask.hidden = false;
    ask.focus();
  });
  return () => {
    box.hidden = false;
    ask.hidden = true;
    no.focus();
  };
}

/** The main panel (right of the room list): a view replaces its content. */
export function panel() {
  return document.getElementById("room");
}
