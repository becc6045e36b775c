// The staff console's one script (first-party: the Content-Security-Policy allows no other).
// It runs the WebAuthn ceremonies: sign in, enrol a passkey, and re-ask the passkey before
// the register is exported. Every text it shows comes from the page or the server, in the
// staff member's language.
"use strict";

(function () {
  function fromB64url(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  }

  function toB64url(buffer) {
    let raw = "";
    new Uint8Array(buffer).forEach((b) => { raw += String.fromCharCode(b); });
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    const options = Object.assign({}, json);
    options.challenge = fromB64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: fromB64url(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map(
      (c) => Object.assign({}, c, { id: fromB64url(c.id) }));
    return options;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    const options = Object.assign({}, json);
    options.challenge = fromB64url(json.challenge);
    options.allowCredentials = (json.allowCredentials || []).map(
      (c) => Object.assign({}, c, { id: fromB64url(c.id) }));
    return options;
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      return credential.toJSON();
    }
    const response = credential.response;
    const out = {
      id: credential.id, rawId: toB64url(credential.rawId), type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toB64url(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      out.response.attestationObject = toB64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64url(response.authenticatorData);
      out.response.signature = toB64url(response.signature);
      if (response.userHandle) {
        out.response.userHandle = toB64url(response.userHandle);
      }
    }
    return out;
  }

  async function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  async function errorOf(response, fallback) {
    try {
      const data = await response.json();
      return data.error || fallback;
    } catch (e) {
      return fallback;
    }
  }

  function download(blob, response) {
    const disposition = response.headers.get("Content-Disposition") || "";
    const found = /filename="([^"]+)"/.exec(disposition);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = found ? found[1] : "register";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  async function run(box, button) {
    const message = box.querySelector("[data-message]");
    const kind = box.dataset.ceremony;
    const csrf = box.dataset.csrf;
    const say = (text) => { message.textContent = text; };
    if (!window.PublicKeyCredential) {
      say(box.dataset.unsupported);
      return;
    }
    button.disabled = true;
    say(box.dataset.working);
    try {
      const answer = await post(box.dataset.options, { csrf: csrf });
      if (!answer.ok) {
        say(await errorOf(answer, box.dataset.cancelled));
        return;
      }
      const options = (await answer.json()).options;
      let credential;
      try {
        credential = kind === "enrol"
          ? await navigator.credentials.create({ publicKey: creationOptions(options) })
          : await navigator.credentials.get({ publicKey: requestOptions(options) });
      } catch (e) {
        say(box.dataset.cancelled);
        return;
      }
      const body = { csrf: csrf, credential: credentialJSON(credential) };
      const format = box.querySelector("input[name=format]:checked");
      if (format) {
        body.format = format.value;
      }
      const verified = await post(box.dataset.verify, body);
      if (!verified.ok) {
        say(await errorOf(verified, box.dataset.cancelled));
        return;
      }
      if (kind === "export") {
        download(await verified.blob(), verified);
        say("");
        box.dataset.done = "yes";
        return;
      }
      window.location.assign((await verified.json()).next);
    } finally {
      button.disabled = false;
    }
  }

  document.querySelectorAll("[data-ceremony]").forEach((box) => {
    const button = box.querySelector("[data-start]");
    button.addEventListener("click", () => { run(box, button); });
  });
}());
