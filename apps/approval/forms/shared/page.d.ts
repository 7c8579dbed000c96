// For the type checker only (tsconfig.browser.json): the approval gateway serves the platform pages' shared module,
// public/assets/page.js, to the forms as /forms/shared/page.js, so forms.js imports it as "./shared/page.js". This
// file points that import at the one real page.js; nothing here is served or copied.
export * from "../../../../public/assets/page.js";
