// Swagger UI page (api/docs): accessible names for the controls Swagger UI draws without
// one (its server picker's <label> has no text, the request-body editor, a multipart file
// field and the dialog's close button have none) or with one that is not what it shows (the dialog's Authorize
// button is named "Apply credentials": voice control users say what they see). Swagger UI
// redraws as people open operations and dialogs, so this runs on every redraw.
"use strict";

const CONTROL_NAMES = {
  "#servers": "Server",
  "textarea.body-param__text": "Request body",
  ".modal-ux .close-modal": "Close",
  ".modal-ux .auth-btn-wrapper .authorize": "Authorize",
  // The upload's multipart field (POST /api/incidents/{incident_id}/attachments).
  '.opblock-body input[type="file"]': "file",
};

function nameControls() {
  for (const [selector, name] of Object.entries(CONTROL_NAMES)) {
    document.querySelectorAll(selector).forEach((el) => {
      if (el.getAttribute("aria-label") !== name) {
        el.setAttribute("aria-label", name);
      }
    });
  }
}

// Only added and removed elements are watched, so setting attributes never re-triggers it.
new MutationObserver(nameControls).observe(document.getElementById("swagger-ui"), { childList: true, subtree: true });
