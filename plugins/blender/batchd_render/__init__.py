"""batchd render: submit the scene's frames to batchd as a task, and follow its progress.

Preferences (Edit > Preferences > Add-ons > batchd render) hold the server, user and token: they
live in Blender's user preferences, never in the .blend file. The panel is in Render properties.
"""

import threading

import bpy
from bpy.app.handlers import persistent

from . import client

bl_info = {
    "name": "batchd render",
    "author": "batchd",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Properties > Render > batchd",
    "description": "Render the scene's frames on a batchd daemon, one job per frame or chunk",
    "category": "Render",
}

# Task progress, per task name, filled by background polls (never by the UI thread).
_progress = {}
_errors = {}
_lock = threading.Lock()
# Set while the add-on itself saves the file, so its save does not submit twice.
_saving = False


def prefs(context=None):
    return (context or bpy.context).preferences.addons[__name__].preferences


class BatchdPreferences(bpy.types.AddonPreferences):
    bl_idname = __name__

    server_url: bpy.props.StringProperty(name="Server URL", default="http://127.0.0.1:9681")
    user: bpy.props.StringProperty(name="User", default="")
    token: bpy.props.StringProperty(name="Token", default="", subtype="PASSWORD")
    password: bpy.props.StringProperty(name="Password (basic)", default="", subtype="PASSWORD")
    queue: bpy.props.StringProperty(name="Queue", default="default")
    job_type: bpy.props.StringProperty(name="Job type", default="blender")
    submit_on_save: bpy.props.BoolProperty(name="Submit on save", default=False)
    on_save_mode: bpy.props.EnumProperty(
        name="On save",
        items=[
            ("API", "Post to the API", "Submit through the daemon's HTTP API"),
            ("SPOOL", "Drop into a spool folder", "Write a job file into a queue's incoming/ folder"),
        ],
        default="API",
    )
    spool_incoming: bpy.props.StringProperty(
        name="Spool incoming folder", subtype="DIR_PATH", description="e.g. /var/spool/batchd/default/incoming"
    )

    def draw(self, context):
        layout = self.layout
        for prop in ("server_url", "user", "token", "password", "queue", "job_type"):
            layout.prop(self, prop)
        layout.prop(self, "submit_on_save")
        row = layout.row()
        row.enabled = self.submit_on_save
        row.prop(self, "on_save_mode")
        if self.on_save_mode == "SPOOL":
            layout.prop(self, "spool_incoming")


class BatchdSceneSettings(bpy.types.PropertyGroup):
    override_range: bpy.props.BoolProperty(name="Own frame range", default=False)
    frame_start: bpy.props.IntProperty(name="Start", default=1)
    frame_end: bpy.props.IntProperty(name="End", default=250)
    frame_step: bpy.props.IntProperty(name="Step", default=1, min=1)
    chunk: bpy.props.IntProperty(name="Frames per job", default=1, min=1)
    last_task: bpy.props.StringProperty(name="Last task", default="")
    last_queue: bpy.props.StringProperty(name="Queue of the last task", default="")


def frame_range(scene):
    s = scene.batchd
    if s.override_range:
        return s.frame_start, s.frame_end, s.frame_step
    return scene.frame_start, scene.frame_end, scene.frame_step


def build_job(context, task=None):
    scene = context.scene
    blend = bpy.data.filepath
    start, end, step = frame_range(scene)
    chunks = client.frame_chunks(start, end, step, scene.batchd.chunk)
    output = bpy.path.abspath(scene.render.filepath)
    return client.render_job(blend, output, chunks, prefs(context).job_type, task)


def api(context=None):
    p = prefs(context)
    return client.Api(p.server_url, p.user, p.token, p.password)


def _poll(queue, task, api_client):
    try:
        status = api_client.task_status(queue, task)
        with _lock:
            _progress[task] = status
            _errors.pop(task, None)
    except client.BatchdError as e:
        with _lock:
            _errors[task] = str(e)


def _follow(queue, task):
    """A timer: polls the task in a thread, until it is resolved; the UI never waits for it."""
    api_client = api()

    def tick():
        with _lock:
            status = _progress.get(task)
        if status is not None and status.get("resolved"):
            return None
        threading.Thread(target=_poll, args=(queue, task, api_client), daemon=True).start()
        for window in bpy.context.window_manager.windows:
            for area in window.screen.areas:
                if area.type == "PROPERTIES":
                    area.tag_redraw()
        return 2.0

    bpy.app.timers.register(tick, first_interval=0.5)


class BATCHD_OT_submit(bpy.types.Operator):
    """Save the file and render its frames on batchd, one job per frame or chunk"""

    bl_idname = "batchd.submit"
    bl_label = "Submit to batchd"

    def execute(self, context):
        global _saving
        if not bpy.data.filepath:
            self.report({"ERROR"}, "batchd: save the .blend file once first (the daemon renders the file)")
            return {"CANCELLED"}
        _saving = True
        try:
            bpy.ops.wm.save_mainfile()
        finally:
            _saving = False
        p = prefs(context)
        task = client.task_name(bpy.data.filepath)
        try:
            job = build_job(context, task)
            ids = api(context).submit(p.queue, job)
        except client.BatchdError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        context.scene.batchd.last_task = task
        context.scene.batchd.last_queue = p.queue
        self.report({"INFO"}, f"batchd: task {task}, {len(ids)} job(s) queued in {p.queue}")
        _follow(p.queue, task)
        return {"FINISHED"}


class BATCHD_PT_panel(bpy.types.Panel):
    bl_label = "batchd"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"

    def draw(self, context):
        layout = self.layout
        s = context.scene.batchd
        layout.prop(s, "override_range")
        if s.override_range:
            row = layout.row(align=True)
            row.prop(s, "frame_start")
            row.prop(s, "frame_end")
            row.prop(s, "frame_step")
        layout.prop(s, "chunk")
        layout.operator(BATCHD_OT_submit.bl_idname, icon="RENDER_ANIMATION")
        if s.last_task:
            with _lock:
                status = _progress.get(s.last_task)
                error = _errors.get(s.last_task)
            box = layout.box()
            box.label(text=f"Task {s.last_task}")
            if error:
                box.label(text=error, icon="ERROR")
            elif status:
                box.label(
                    text=f"{status['done']}/{status['total']} done, {status['running']} running, "
                    f"{status['queued']} queued, {status['failed']} failed"
                )


@persistent
def submit_on_save(_filepath):
    """save_post: drop a job file, or post to the API, for the saved file's frames."""
    if _saving:
        return
    try:
        p = prefs()
    except KeyError:
        return
    if not p.submit_on_save:
        return
    context = bpy.context
    try:
        task = client.task_name(bpy.data.filepath)
        job = build_job(context, task)
        if p.on_save_mode == "SPOOL":
            client.drop(bpy.path.abspath(p.spool_incoming), job, task)
        else:
            api(context).submit(p.queue, job)
    except client.BatchdError as e:
        print(f"batchd: submit on save failed: {e}")


CLASSES = (BatchdPreferences, BatchdSceneSettings, BATCHD_OT_submit, BATCHD_PT_panel)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.batchd = bpy.props.PointerProperty(type=BatchdSceneSettings)
    bpy.app.handlers.save_post.append(submit_on_save)


def unregister():
    if submit_on_save in bpy.app.handlers.save_post:
        bpy.app.handlers.save_post.remove(submit_on_save)
    del bpy.types.Scene.batchd
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)

