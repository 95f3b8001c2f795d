// Junction's "Open as App" JupyterLab extension.
//
// Written by hand as a module federation container, so it needs no build step: JupyterLab
// loads this script, calls `init()` with its scope of shared modules, then `get("./extension")`
// for the module whose default export is the plugin list. The plugin takes JupyterLab's own
// instances of @jupyterlab/filebrowser, /services, /apputils and /coreutils from that scope.
//
// When the apps plugin runs (it sets `junctionAppsFrameworks` in the page config), the plugin
// asks GET /api/apps/frameworks which files of the folder on show a framework preset
// would run, and adds "Open as App (Streamlit)" (or Panel, Voila, ...) to those files' context
// menu. The command opens the user's app for that file and framework, creating it when there is
// none, in a new browser tab through /apps/{id}/ (each app runs on a host of its own).
(function () {
  "use strict";

  const NAME = "@junction/apps-extension";
  const COMMAND = "junction-apps:open-as-app";
  const LABELS = {
    streamlit: "Streamlit",
    gradio: "Gradio",
    dash: "Dash",
    panel: "Panel",
    bokeh: "Bokeh",
    voila: "Voila",
  };
  let shared = null;

  function newest(versions) {
    const keys = Object.keys(versions);
    const loaded = keys.filter((key) => versions[key].loaded);
    const parts = (key) => key.split(/[.-]/).map((part) => Number.parseInt(part, 10) || 0);
    const order = (a, b) => {
      const [x, y] = [parts(a), parts(b)];
      for (let i = 0; i < Math.max(x.length, y.length); i++) {
        if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) - (y[i] || 0);
      }
      return 0;
    };
    return (loaded.length ? loaded : keys).sort(order).pop();
  }

  async function use(pkg) {
    const versions = shared && shared[pkg];
    if (!versions || !Object.keys(versions).length) {
      throw new Error(`${NAME}: JupyterLab does not share ${pkg}`);
    }
    const factory = await versions[newest(versions)].get();
    return factory();
  }

  function activate(app, browsers, services, apputils, coreutils) {
    const { ServerConnection } = services;
    const { PageConfig, URLExt } = coreutils;
    // The apps plugin names its API in the page config; without it (or without a file
    // browser, as on some Notebook 7 pages) there is nothing to do.
    const frameworksUrl = PageConfig.getOption("junctionAppsFrameworks");
    if (!frameworksUrl || !browsers) return;
    const settings = ServerConnection.makeSettings();
    const contents = app.serviceManager.contents;
    const detected = new Map(); // folder -> {file name: framework}
    const signatures = new Map(); // folder -> what its listing held when last asked

    async function call(path, init) {
      const url = URLExt.join(settings.baseUrl, path);
      const response = await ServerConnection.makeRequest(url, init || {}, settings);
      const text = await response.text();
      const body = text ? JSON.parse(text) : null;
      if (!response.ok) throw new Error((body && body.message) || response.statusText);
      return body;
    }

    async function scan(model) {
      const folder = contents.localPath(model.path);
      const candidates = Array.from(model.items()).filter(
        (item) => item.type !== "directory" && /\.(py|ipynb)$/i.test(item.name),
      );
      const signature = candidates.map((item) => `${item.name} ${item.last_modified}`).join("\n");
      if (signatures.get(folder) === signature) return;
      signatures.set(folder, signature);
      if (!candidates.length) {
        detected.set(folder, {});
        return;
      }
      try {
        const found = await call(`${frameworksUrl}?path=${encodeURIComponent(folder)}`);
        detected.set(folder, found.files);
      } catch (error) {
        signatures.delete(folder);
        detected.delete(folder);
      }
    }

    function watch(browser) {
      const model = browser.model;
      const refresh = () => void scan(model);
      model.refreshed.connect(refresh);
      model.pathChanged.connect(refresh);
      refresh();
    }
    browsers.tracker.forEach(watch);
    browsers.tracker.widgetAdded.connect((_, browser) => watch(browser));

    function target() {
      const browser = browsers.tracker.currentWidget;
      if (!browser) return null;
      const items = Array.from(browser.selectedItems());
      if (items.length !== 1 || items[0].type === "directory") return null;
      const files = detected.get(contents.localPath(browser.model.path)) || {};
      const framework = files[items[0].name];
      return framework ? { path: contents.localPath(items[0].path), framework } : null;
    }

    app.commands.addCommand(COMMAND, {
      label: () => {
        const found = target();
        return found ? `Open as App (${LABELS[found.framework] || found.framework})` : "Open as App";
      },
      caption: "Run this file as a web app and open it in a new browser tab",
      isVisible: () => target() !== null,
      execute: async () => {
        const found = target();
        if (!found) return;
        // Opened during the click (browsers block pop-ups opened later), pointed at the app
        // once it is known; cut off from this page.
        const tab = window.open("", "_blank");
        if (tab) tab.opener = null;
        try {
          const apps = await call("api/apps");
          let model = apps.find((a) => a.path === found.path && a.framework === found.framework);
          if (!model) {
            model = await call("api/apps", {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ framework: found.framework, path: found.path }),
            });
          }
          if (tab) tab.location.href = model.url;
          else window.open(model.url, "_blank", "noopener");
        } catch (error) {
          if (tab) tab.close();
          void apputils.showErrorMessage("Open as App", error);
        }
      },
    });
    app.contextMenu.addItem({
      command: COMMAND,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 3,
    });
  }

  async function extension() {
    const [filebrowser, services, apputils, coreutils] = await Promise.all([
      use("@jupyterlab/filebrowser"),
      use("@jupyterlab/services"),
      use("@jupyterlab/apputils"),
      use("@jupyterlab/coreutils"),
    ]);
    const plugin = {
      id: `${NAME}:open-as-app`,
      description: "Open a Streamlit, Gradio, Dash, Panel, Bokeh file or a notebook as an app.",
      autoStart: true,
      optional: [filebrowser.IFileBrowserFactory],
      activate: (app, browsers) => activate(app, browsers, services, apputils, coreutils),
    };
    return { __esModule: true, default: [plugin] };
  }

  const containers = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  containers[NAME] = {
    init(scope) {
      shared = scope;
    },
    get(module) {
      if (module !== "./extension") {
        return Promise.reject(new Error(`${NAME} has no module ${module}`));
      }
      return extension().then((exports) => () => exports);
    },
  };
})();
