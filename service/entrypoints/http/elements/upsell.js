/*! <upsell-offer session client-secret api> 1.0.0, the upsell service's checkout switch. No dependencies.
 *  Events: upsell-load, upsell-change (detail: the session view), upsell-error (detail: {status, code}). */
(function () {
  "use strict";
  if (!window.customElements || window.customElements.get("upsell-offer")) return;

  var VERSION = "1.0.0";
  // Messages in the order of KEYS; amounts and intervals come formatted from the service.
  var KEYS = ["offer", "save", "total", "expired", "complete", "unavailable", "failed", "unreadable"];
  var TEXT = {
    en: [
      "Pay {upsell} instead of {current}",
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
  var P = ":where(upsell-offer) .upsell-offer";
  var STYLE = [
    "{display:grid;grid-template-columns:auto 1fr;gap:.25em .75em;align-items:center}",
    "[hidden]{display:none}",
    "__switch{width:2.75em;height:1.5em;padding:0;border:0;border-radius:1em;background:#767676;position:relative}",
    "__switch::after{content:'';position:absolute;top:.2em;left:.2em;width:1.1em;height:1.1em;border-radius:50%;background:#fff}",
    "__switch[aria-checked=true]{background:#0a7b34}",
    "__switch[aria-checked=true]::after{left:1.45em}",
    "__switch:disabled{opacity:.5}",
    "__savings{font-weight:bold}",
    "__savings,.upsell-offer__total,.upsell-offer__message{grid-column:2}",
    "__message:empty{display:none}"
  ].map(function (rule) { return P + rule; }).join("");
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
      var response;
      try {
        response = await this.#request("GET");
      } catch (error) {
        return this.#fail(0, null, "unreadable");
      }
      if (!response.ok) return this.#fail(response.status, await this.#code(response), "unreadable");
      this.#render(await response.json());
      this.#emit("upsell-load", this.#view);
    }

    async #toggle() {
      var view = this.#view;
      if (this.#busy || !view || this.#parts.button.disabled) return;
      var selected = !view.upsell.selected;
      this.#busy = true;
      this.#parts.root.setAttribute("aria-busy", "true");
      this.#parts.button.setAttribute("aria-checked", String(selected));
      this.#parts.message.textContent = "";
      try {
        var response = await this.#request("POST", { selected: selected });
        if (response.ok) {
          this.#render(await response.json());
          this.#emit("upsell-change", this.#view);
        } else {
          var code = await this.#code(response);
          this.#render(view);
          if (response.status === 409) this.#close(CLOSED[code] || "expired");
          this.#fail(response.status, code, response.status === 409 ? null : "failed");
        }
      } catch (error) {
        this.#render(view);
        this.#fail(0, null, "failed");
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

    #fail(status, code, message) {
      if (message) this.#parts.message.textContent = this.#text(message);
      this.#emit("upsell-error", { status: status, code: code });
    }

    #close(reason) {
      this.#parts.button.disabled = true;
      this.#parts.message.textContent = this.#text(reason);
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
      var button = part("button", "switch", root);
      button.type = "button";
      button.setAttribute("role", "switch");
      button.setAttribute("aria-checked", "false");
      var label = part("span", "label", root);
      label.id = id + "-label";
      button.setAttribute("aria-labelledby", label.id);
      var savings = part("span", "savings", root);
      var total = part("span", "total", root);
      total.id = id + "-total";
      button.setAttribute("aria-describedby", total.id);
      var message = part("p", "message", root);
      message.setAttribute("role", "status");
      message.setAttribute("aria-live", "polite");
      var toggle = this.#toggle.bind(this);
      button.addEventListener("click", toggle);
      label.addEventListener("click", toggle);
      this.replaceChildren(root);
      this.#parts = { root: root, button: button, label: label, savings: savings, total: total, message: message };
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
      parts.root.hidden = false;
      parts.button.setAttribute("aria-checked", String(offer.selected));
      parts.label.textContent = fill(this.#text("offer"), {
        upsell: offer.options.upsell.display.per_interval,
        current: offer.options.current.display.per_interval
      });
      parts.savings.textContent = offer.savings ? fill(this.#text("save"), { savings: offer.savings.display }) : "";
      parts.total.textContent = fill(this.#text("total"), { total: chosen.display.amount_total });
      if (view.status !== "open") this.#close(view.status === "complete" ? "complete" : "expired");
      else if (!parts.button.disabled) this.setAttribute("data-state", offer.selected ? "selected" : "unselected");
    }
  }

  UpsellOffer.version = VERSION;
  window.customElements.define("upsell-offer", UpsellOffer);
})();
