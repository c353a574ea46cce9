'use strict';
// What the extension does on a save, without VS Code: run batchd's on-save helper in the
// background and hand each line it prints (`queued <id>`, `<id> done`) to `report`.
const { spawn } = require('node:child_process');
const path = require('node:path');

const DEFAULT_SCRIPT = path.resolve(__dirname, '..', 'on-save.mjs');

/**
 * @param {string} file the saved file
 * @param {{ script?: string, node?: string, wait?: boolean }} settings
 * @param {(line: string, isError: boolean) => void} report
 * @returns {import('node:child_process').ChildProcess}
 */
function submitOnSave(file, settings, report) {
  const args = [settings.script || DEFAULT_SCRIPT, ...(settings.wait === false ? [] : ['--wait']), file];
  const child = spawn(settings.node || 'node', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = (isError) => (chunk) => {
    for (const line of String(chunk).split('\n')) if (line !== '') report(line, isError);
  };
  child.stdout.on('data', lines(false));
  child.stderr.on('data', lines(true));
  child.on('error', (error) => report(`cannot run ${settings.node || 'node'}: ${error.message}`, true));
  return child;
}

module.exports = { submitOnSave, DEFAULT_SCRIPT };
