// The docs page's script, a file rather than inline so that its CSP can say `script-src 'self'`: get the key if
// the service needs one, fetch the OpenAPI spec with it, and start Swagger UI on that spec with the key filled in
// for "Try it out" (the spec declares the bearer scheme when the service has a key).
"use strict";
(() => {
  // The search page's name for it: a key entered on either page serves both, for this tab only.
  const KEY_ITEM = "qwen-rag-api-key";
  const config = JSON.parse(document.querySelector('meta[name="qwen-rag-config"]').content);
  const keyForm = document.getElementById("key-form");
  const keyBox = document.getElementById("key");
  const statusLine = document.getElementById("status");

  function say(message, isError = false) {
    statusLine.textContent = message;
    statusLine.classList.toggle("error", isError);
  }

  function askForKey(message, isError = false) {
    sessionStorage.removeItem(KEY_ITEM);
    keyBox.value = "";
    keyForm.hidden = false;
    keyBox.focus();
    say(message, isError);
  }

  function start(spec, key) {
    const ui = SwaggerUIBundle({
      spec,
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      // Swagger UI's default asks validator.swagger.io for a badge (in some layouts): nothing is to leave here.
      validatorUrl: null,
      onComplete: () => {
        if (key) ui.preauthorizeApiKey("bearer", key);
      },
    });
  }

  async function load() {
    const key = config.needs_key ? sessionStorage.getItem(KEY_ITEM) : null;
    if (config.needs_key && !key) {
      askForKey("This service needs an API key to show its API.");
      return;
    }
    say("Loading the API description…");
    let response, spec;
    try {
      response = await fetch(config.openapi_url, { headers: key ? { Authorization: "Bearer " + key } : {} });
      spec = await response.json();
    } catch (error) {
      say("Cannot load the API description: " + error.message, true);
      return;
    }
    if (response.status === 401) {
      askForKey("The service refused this API key: enter the right one.", true);
      return;
    }
    if (!response.ok) {
      say(`Cannot load the API description: HTTP ${response.status}`, true);
      return;
    }
    keyForm.hidden = true;
    say("");
    start(spec, key);
  }

  keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keyBox.value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_ITEM, key);
    load();
  });
  load();
})();
