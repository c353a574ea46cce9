import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type ApiDaemon, startApiDaemon } from '../cli/api-daemon.ts';
import { lastJson, original, runPython } from './original.ts';

/**
 * batchd's PyQt5 GUI (python/batch.py), unchanged, headless: its main window is built against a real
 * daemon, lists the queue and its jobs, enqueues one through its form and shows its output.
 */
describe('the PyQt5 GUI', () => {
  let d: ApiDaemon;

  beforeAll(async () => {
    d = await startApiDaemon({
      jobTypes: {
        echo: {
          title: 'Echo',
          template: "printf '%s\\n' $message",
          params: [{ name: 'message', type: 'String' }],
        },
        count: { template: 'seq $n', params: [{ name: 'n', type: 'Integer', default: 3 }] },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await d?.stop();
  });

  it('builds its main window, enqueues through its form, and shows the job Done with its output', async () => {
    const result = await runPython(
      `
import json, sys, time
sys.argv = [${JSON.stringify(original('python', 'batch.py'))}]
from PyQt5 import QtCore, QtWidgets
app = QtWidgets.QApplication(sys.argv)
import batch, jobview
from batchd.client import Client

gui = batch.GUI(Client.from_config({}))
out = {}
out['queues'] = [gui.queue_popup.itemText(i) for i in range(gui.queue_popup.count())]
out['types'] = [gui.type_popup.itemText(i) for i in range(gui.type_popup.count())]
out['hosts'] = [gui.host_popup.itemText(i) for i in range(gui.host_popup.count())]
out['rows_before'] = gui.qtable.model.rowCount(None)
out['command_form'] = sorted(gui.param_widgets.keys())

gui.type_popup.setCurrentIndex([t['name'] for t in gui.types].index('echo'))
gui.param_widgets['message'].setText('from the GUI')
gui._on_ok()
for _ in range(300):
    gui._refresh_queue()
    jobs = gui.qtable.model.jobs
    if jobs and jobs[0]['status'] in ('Done', 'Failed'):
        break
    app.processEvents()
    time.sleep(0.1)
# The GUI reads the queue's counts before its jobs: once more, so the counts are from after the job ended.
gui._refresh_queue()
model = gui.qtable.model
out['header'] = [model.headerData(c, QtCore.Qt.Horizontal, QtCore.Qt.DisplayRole) for c in range(model.columnCount(None))]
out['row'] = [model.data(model.index(0, c), QtCore.Qt.DisplayRole) for c in range(model.columnCount(None))]
out['row_colour'] = model.data(model.index(0, 0), QtCore.Qt.BackgroundColorRole).name()
out['queue_info'] = gui.queue_info.text()

job = model.jobs[0]
view = jobview.JobView(job, gui.type_by_name[job['type']], gui.client.get_job_results(job['id']), parent=gui)
out['view_status'] = view.status_editor.text()
out['view_stdout'] = view.stdout_editor.toPlainText()

gui.type_popup.setCurrentIndex([t['name'] for t in gui.types].index('count'))
out['count_default'] = gui.param_widgets['n'].value()
print(json.dumps(out))
`,
      { BATCH_MANAGER_URL: `${d.url}/batchd`, QT_QPA_PLATFORM: 'offscreen', HOME: d.home },
    );
    expect(result.code, result.stderr).toBe(0);
    const out = lastJson<Record<string, unknown>>(result);
    expect(out.queues).toEqual(['[*] default']);
    // The built-in command type (its parameter is a Script here) builds a form like any other.
    expect(out.types).toEqual(['Shell command', 'count', 'Echo']);
    expect(out.command_form).toEqual(['command']);
    expect(out.hosts).toEqual(['<Queue default host>']);
    expect(out.rows_before).toBe(0);
    expect(out.header).toEqual(['ID', 'Seq', 'Type', 'Status', 'Created', 'Finished']);
    const row = out.row as unknown[];
    expect(row.slice(0, 4)).toEqual([expect.any(Number), row[0], 'echo', 'Done']);
    expect(row[4]).not.toBe('<undefined>');
    expect(row[5]).not.toBe('<undefined>');
    expect(out.row_colour).toBe('#84b561');
    expect(out.queue_info).toBe('Schedule: anytime\nHost: *\nNew/Processing/Done: 0 / 0 / 1\nFailed: 0');
    expect(out.view_status).toBe('Done');
    expect(out.view_stdout).toBe('from the GUI\n');
    expect(out.count_default).toBe(3);
  }, 60_000);
});
