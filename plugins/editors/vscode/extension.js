'use strict';
// The VS Code extension: on every save, submit the job the project's .batchd-on-save.yaml names
// (submit.js), and show the job id and its end in the status bar (errors as a notification).
const vscode = require('vscode');
const { submitOnSave } = require('./submit.js');

function activate(context) {
  const onSave = vscode.workspace.onDidSaveTextDocument((document) => {
    if (document.uri.scheme !== 'file') return;
    const config = vscode.workspace.getConfiguration('batchd');
    const settings = {
      script: config.get('onSaveScript'),
      node: config.get('node'),
      wait: config.get('wait'),
    };
    submitOnSave(document.fileName, settings, (line, isError) => {
      if (isError) void vscode.window.showWarningMessage(`batchd: ${line}`);
      else vscode.window.setStatusBarMessage(`batchd: ${line}`, 10_000);
    });
  });
  context.subscriptions.push(onSave);
}

function deactivate() {}

module.exports = { activate, deactivate };
