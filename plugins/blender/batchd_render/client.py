"""What the add-on sends, and how: plain Python (no bpy), so it can be read and tested on its own.

A render is a batchd task: one job per chunk of frames, each job `blender -b FILE -o OUT -f FRAMES`
(the `blender` job type, etc/jobtypes/blender.yaml). It goes to the daemon's HTTP API, or is
dropped as a job file into a queue's incoming/ folder (written as a dotfile, then renamed in).
"""

import base64
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 10


class BatchdError(Exception):
    """The daemon refused, or could not be reached: the message is for the user."""


def frame_chunks(start, end, step=1, chunk=1):
    """Frames start..end by step, in chunks of `chunk` frames, as Blender's -f syntax."""
    if end < start:
        raise BatchdError(f"the frame range {start}..{end} is empty")
    frames = list(range(start, end + 1, max(1, step)))
    chunks = []
    for i in range(0, len(frames), max(1, chunk)):
        part = frames[i : i + max(1, chunk)]
        if len(part) == 1:
            chunks.append(str(part[0]))
        elif step == 1:
            chunks.append(f"{part[0]}..{part[-1]}")
        else:
            chunks.append(",".join(str(f) for f in part))
    return chunks


def task_name(blend_path):
    """A task name from the file's name and the time (letters, digits, '.', '_', '-'; max 64)."""
    stem = os.path.splitext(os.path.basename(blend_path))[0]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "render"
    return f"{stem[:40]}-{time.strftime('%Y%m%d-%H%M%S')}"


def render_job(blend_path, output, chunks, job_type="blender", task=None):
    """The job file of a render task: `frames` expands into one job per chunk."""
    frames = {"each": chunks} if len(chunks) > 1 else chunks[0]
    job = {
        "type": job_type,
        "params": {"input": blend_path, "output": output, "frames": frames},
        "notes": f"render of {os.path.basename(blend_path)}, frames {chunks[0]} to {chunks[-1]}",
    }
    if task:
        job["task"] = task
    return job


class Api:
    """batchd's HTTP API: token (Bearer) or user and password (basic); never put in a URL."""

    def __init__(self, url, user="", token="", password=""):
        self.url = url.rstrip("/")
        self.user = user
        self.token = token
        self.password = password

    def _headers(self):
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.user:
            pair = f"{self.user}:{self.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=self._headers())
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as res:
                return json.loads(res.read() or b"null")
        except urllib.error.HTTPError as e:
            raise BatchdError(self._refusal(e)) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise BatchdError(f"batchd at {self.url} is unreachable: {reason}") from None

    @staticmethod
    def _refusal(e):
        try:
            message = json.loads(e.read())["error"]["message"]
        except Exception:
            message = e.reason
        what = {401: "not signed in (check user and token)", 403: "not allowed", 422: "job refused"}
        return f"batchd: {what.get(e.code, f'HTTP {e.code}')}: {message}"

    def submit(self, queue, job):
        """The ids of the jobs made."""
        path = "/queue/" + urllib.parse.quote(queue, safe="")
        return self.request("POST", path, job)["jobs"]

    def task_status(self, queue, task):
        path = f"/queue/{urllib.parse.quote(queue, safe='')}/task/{urllib.parse.quote(task, safe='')}"
        return self.request("GET", path)


def drop(spool_incoming, job, name):
    """Drop a job file into an incoming/ folder: written under a dotfile name, then renamed in."""
    if not os.path.isdir(spool_incoming):
        raise BatchdError(f"the spool folder {spool_incoming} does not exist")
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    temp = os.path.join(spool_incoming, f".{base}.tmp")
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(job, f, indent=1)
    final = os.path.join(spool_incoming, f"{base}.json")
    os.replace(temp, final)
    return final
