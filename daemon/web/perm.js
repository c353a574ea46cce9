// What the signed-in user may do, to show only the actions they may take. The daemon checks every
// request again (a hidden button is a courtesy, not a guard). Mirrors daemon/auth/permissions.ts.

let me = { name: 'anonymous', superuser: true, grants: [] };

export function setMe(who) {
  me = who;
}

export function whoami() {
  return me;
}

export function can(permission, scope = {}) {
  if (me.superuser) return true;
  const covers = (granted, wanted) => granted === null || granted === wanted;
  return me.grants.some(
    (g) =>
      g.permission === permission &&
      covers(g.queue_name, scope.queue) &&
      (permission !== 'CreateJobs' ||
        (covers(g.type_name, scope.type) && covers(g.host_name, scope.host ?? '__default__'))),
  );
}

/** May create jobs of some type in the queue (the type is chosen in the form). */
export function canSubmitTo(queue) {
  return (
    me.superuser ||
    me.grants.some((g) => g.permission === 'CreateJobs' && (g.queue_name === null || g.queue_name === queue))
  );
}
