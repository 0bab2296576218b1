/*! <upsell-offer session client-secret api> 1.1.0, the upsell service's offer at checkout. No dependencies.
 *  Events: upsell-load, upsell-change (detail: the session view), upsell-error (detail: {status, code}). */
(function () {
  "use strict";
  if (!window.customElements || window.customElements.get("upsell-offer")) return;

  var VERSION = "1.1.0";
  // Messages in the order of KEYS; amounts and intervals come formatted from the service.
  var KEYS = ["offer", "kicker", "save", "total", "expired", "complete", "unavailable", "failed", "unreadable"];
  var TEXT = {
    en: [
      "Pay {upsell} instead of {current}",
      "Special offer",
      "Save {savings}",
      "Total today: {total}",
      "This checkout has expired.",
      "This checkout is already complete.",
      "This offer is no longer available.",
      "Your choice could not be saved. Please try again.",
      "The offer could not be loaded."
    ],
    de: [
      "{upsell} statt {current} zahlen",
      "Sonderangebot",
      "{savings} sparen",
      "Heute fällig: {total}",
      "Dieser Checkout ist abgelaufen.",
      "Dieser Checkout ist bereits abgeschlossen.",
      "Dieses Angebot ist nicht mehr verfügbar.",
      "Ihre Auswahl konnte nicht gespeichert werden. Bitte versuchen Sie es erneut.",
      "Das Angebot konnte nicht geladen werden."
    ],
    fr: [
      "Payer {upsell} au lieu de {current}",
      "Offre spéciale",
      "Économisez {savings}",
      "Total aujourd’hui : {total}",
      "Cette session de paiement a expiré.",
      "Ce paiement est déjà terminé.",
      "Cette offre n’est plus disponible.",
      "Votre choix n’a pas pu être enregistré. Veuillez réessayer.",
      "L’offre n’a pas pu être chargée."
    ],
    ja: [
      "{current}ではなく{upsell}で支払う",
      "特別オファー",
      "{savings}お得",
      "本日のお支払い: {total}",
      "このチェックアウトは有効期限が切れています。",
      "このチェックアウトはすでに完了しています。",
      "このオファーは現在ご利用いただけません。",
      "選択を保存できませんでした。もう一度お試しください。",
      "オファーを読み込めませんでした。"
    ]
  };
  var CLOSED = { session_expired: "expired", session_complete: "complete", upsell_not_available: "unavailable" };
  // Where this script came from: the default for `api`.
  var SCRIPT = document.currentScript && document.currentScript.src;
  var DEFAULT_API = SCRIPT ? SCRIPT.replace(/\/v1\/elements\/[^/]*$/, "") : "";
  // Every default is inside :where(), of no specificity, so any rule of the page wins over it.
  var GREY = "#595959";
  var STYLE = [
    "{display:grid;grid-template-columns:auto 1fr;gap:.3em .75em;align-items:center;padding:.75em 1em;" +
      "border:2px solid #0a7b34;border-radius:.5em;background:#fff;color:#1d2330}",
    "__head{grid-column:1/-1;display:flex;flex-wrap:wrap;align-items:center;gap:.25em .6em;margin:0}",
    "__kicker{font-size:.8em;font-weight:700;letter-spacing:.05em;text-transform:uppercase;color:#0a6b2e}",
    "__savings{padding:.1em .6em;border-radius:1em;background:#0a7b34;color:#fff;font-weight:700}",
    "__switch{width:2.75em;height:1.5em;padding:0;border:0;border-radius:1em;background:#767676;position:relative;cursor:pointer}",
    "__switch::after{content:'';position:absolute;top:.2em;left:.2em;width:1.1em;height:1.1em;border-radius:50%;background:#fff}",
    "__switch[aria-checked=true]{background:#0a7b34}",
    "__switch[aria-checked=true]::after{left:1.45em}",
    "__switch:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}",
    "__switch:disabled{background:#c4c4c4;cursor:not-allowed}",
    "__label{font-weight:600;cursor:pointer}",
    "__equivalent,.upsell-offer__total{grid-column:2}",
    "__equivalent{color:#3d4451}",
    "__message{grid-column:1/-1;margin:.25em 0 0;padding:.5em .75em;border-left:4px solid #8a5a00;background:#fff8e5;color:#1d2330}",
    "__message[role=alert]{border-color:#b3261e;background:#fdecea}",
    "__message:empty{display:none}",
    "--closed{border-color:#8c8c8c;background:#f3f3f3;color:" + GREY + "}",
    "--closed .upsell-offer__kicker,.upsell-offer--closed .upsell-offer__equivalent{color:" + GREY + "}",
    "--closed .upsell-offer__label{text-decoration:line-through;cursor:default}",
    "--closed .upsell-offer__savings{background:" + GREY + "}",
    "__equivalent:empty{display:none}",
    "[hidden],.upsell-offer [hidden]{display:none}"
  ].map(function (rule) {
    // A pseudo-element is not allowed inside :where(), so it goes after it.
    return ":where(upsell-offer .upsell-offer" + rule.replace(/(::\w+)?\{/, function (all, after) { return ")" + (after || "") + "{"; });
  }).join("");
  var counter = 0;
  var styled = null;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, name) {
      return values[name];
    });
  }

  function part(tag, name, parent) {
    var node = document.createElement(tag);
    node.className = "upsell-offer__" + name;
    parent.appendChild(node);
    return node;
  }

  class UpsellOffer extends HTMLElement {
    static get observedAttributes() {
      return ["session", "api"];
    }

    // The client secret lives here only: never in an attribute, a URL, storage or the console.
    #secret = null;
    #view = null;
    #busy = false;
    #closed = false;
    #parts = null;

    set clientSecret(value) {
      this.#secret = value ? String(value) : null;
      this.#load();
    }

    get view() {
      return this.#view;
    }

    // Read once and taken off the DOM, where other scripts and session recorders would see it.
    connectedCallback() {
      if (this.hasAttribute("client-secret")) {
        this.#secret = this.getAttribute("client-secret") || null;
        this.removeAttribute("client-secret");
      }
      this.#load();
    }

    attributeChangedCallback(name, before, after) {
      if (before !== after && this.isConnected) this.#load();
    }

    #text(key) {
      var locale = ((this.#view && this.#view.locale) || "en").toLowerCase().split(/[-_]/)[0];
      return (TEXT[locale] || TEXT.en)[KEYS.indexOf(key)];
    }

    #request(method, body) {
      var api = (this.getAttribute("api") || DEFAULT_API).replace(/\/+$/, "");
      var url = api + "/v1/checkout/sessions/" + encodeURIComponent(this.getAttribute("session"));
      var headers = { Authorization: "Bearer " + this.#secret };
      if (body) headers["Content-Type"] = "application/json";
      return fetch(body ? url + "/upsell" : url, {
        method: method,
        headers: headers,
        body: body ? JSON.stringify(body) : undefined,
        credentials: "omit",
        cache: "no-store"
      });
    }

    async #load() {
      if (!this.isConnected || !this.#secret || !this.getAttribute("session")) return;
      this.#build();
      this.#open();
      var response;
      try {
        response = await this.#request("GET");
      } catch (error) {
        return this.#unreadable(0, null);
      }
      if (!response.ok) return this.#unreadable(response.status, await this.#code(response));
      this.#render(await response.json());
      this.#emit("upsell-load", this.#view);
    }

    async #toggle() {
      var view = this.#view;
      if (this.#busy || !view || this.#closed) return;
      var selected = !view.upsell.selected;
      this.#busy = true;
      this.#parts.root.setAttribute("aria-busy", "true");
      this.#parts.button.setAttribute("aria-checked", String(selected));
      this.#say("status", "");
      try {
        var response = await this.#request("POST", { selected: selected });
        if (response.ok) {
          this.#render(await response.json());
          this.#emit("upsell-change", this.#view);
        } else {
          var code = await this.#code(response);
          this.#render(view);
          if (response.status === 409) this.#close(CLOSED[code] || "expired");
          else this.#say("alert", this.#text("failed"));
          this.#emit("upsell-error", { status: response.status, code: code });
        }
      } catch (error) {
        this.#render(view);
        this.#say("alert", this.#text("failed"));
        this.#emit("upsell-error", { status: 0, code: null });
      } finally {
        this.#busy = false;
        this.#parts.root.removeAttribute("aria-busy");
      }
    }

    async #code(response) {
      try {
        return (await response.json()).code || null;
      } catch (error) {
        return null;
      }
    }

    // A load that failed shows its message alone, as an alert: the offer it could not read stays hidden.
    #unreadable(status, code) {
      var parts = this.#parts;
      parts.offer.forEach(function (node) { node.hidden = true; });
      parts.root.hidden = false;
      this.#say("alert", this.#text("unreadable"));
      this.setAttribute("data-state", "failed");
      this.#emit("upsell-error", { status: status, code: code });
    }

    // Errors are alerts; what closed the offer is a status.
    #say(role, text) {
      this.#parts.message.setAttribute("role", role);
      this.#parts.message.textContent = text;
    }

    #open() {
      this.#closed = false;
      this.#parts.button.disabled = false;
      this.#parts.root.classList.remove("upsell-offer--closed");
    }

    #close(reason) {
      this.#closed = true;
      this.#parts.button.disabled = true;
      this.#parts.root.classList.add("upsell-offer--closed");
      this.#say("status", this.#text(reason));
      this.setAttribute("data-state", reason);
    }

    #emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail: detail, bubbles: true }));
    }

    #build() {
      if (this.#parts) return;
      if (!styled) {
        styled = part("style", "style", document.head);
        styled.textContent = STYLE;
      }
      var id = "upsell-offer-" + ++counter;
      var root = document.createElement("div");
      root.className = "upsell-offer";
      root.hidden = true;
      var head = part("p", "head", root);
      var kicker = part("span", "kicker", head);
      var savings = part("strong", "savings", head);
      var button = part("button", "switch", root);
      button.type = "button";
      button.setAttribute("role", "switch");
      button.setAttribute("aria-checked", "false");
      var label = part("span", "label", root);
      var equivalent = part("span", "equivalent", root);
      var total = part("span", "total", root);
      label.id = id + "-label";
      savings.id = id + "-savings";
      equivalent.id = id + "-equivalent";
      total.id = id + "-total";
      // The name says what the offer saves; the description what it costs a cycle and today.
      button.setAttribute("aria-labelledby", label.id + " " + savings.id);
      button.setAttribute("aria-describedby", equivalent.id + " " + total.id);
      var message = part("p", "message", root);
      message.setAttribute("role", "status");
      var toggle = this.#toggle.bind(this);
      button.addEventListener("click", toggle);
      label.addEventListener("click", toggle);
      this.replaceChildren(root);
      this.#parts = {
        root: root, button: button, label: label, kicker: kicker, savings: savings, equivalent: equivalent,
        total: total, message: message, offer: [head, button, label, equivalent, total]
      };
    }

    #render(view) {
      this.#view = view;
      var parts = this.#parts;
      var offer = view.upsell;
      parts.root.lang = (view.locale || "en").replace("_", "-");
      if (!offer.eligible || !offer.options) {
        parts.root.hidden = true;
        this.setAttribute("data-state", "ineligible");
        return;
      }
      var chosen = offer.selected ? offer.options.upsell : offer.options.current;
      parts.offer.forEach(function (node) { node.hidden = false; });
      parts.root.hidden = false;
      parts.button.setAttribute("aria-checked", String(offer.selected));
      parts.kicker.textContent = this.#text("kicker");
      parts.label.textContent = fill(this.#text("offer"), {
        upsell: offer.options.upsell.display.per_interval,
        current: offer.options.current.display.per_interval
      });
      parts.savings.textContent = offer.savings ? fill(this.#text("save"), { savings: offer.savings.display }) : "";
      parts.savings.hidden = !offer.savings;
      parts.equivalent.textContent = offer.options.upsell.display.equivalent || "";
      parts.total.textContent = fill(this.#text("total"), { total: chosen.display.amount_total });
      if (!this.#closed) this.#say("status", "");
      if (view.status !== "open") this.#close(view.status === "complete" ? "complete" : "expired");
      else if (!this.#closed) this.setAttribute("data-state", offer.selected ? "selected" : "unselected");
    }
  }

  UpsellOffer.version = VERSION;
  window.customElements.define("upsell-offer", UpsellOffer);
})();
