// Starts Swagger UI on the page /docs serves. A file of its own rather than an
// inline <script>, so the page's Content-Security-Policy can refuse inline script.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    displayRequestDuration: true,
    // BaseLayout: the standalone layout's top bar only adds a box for loading
    // another site's spec, which this page's CSP would refuse anyway.
    layout: "BaseLayout",
    // Never `?url=` / `?configUrl=` from the address bar: the page shows this
    // proxy's own document only.
    queryConfigEnabled: false,
    // The validator badge is an image fetched from swagger.io.
    validatorUrl: null,
  });
})();
