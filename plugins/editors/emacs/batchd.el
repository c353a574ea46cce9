;;; batchd.el --- submit a batchd job when a file is saved  -*- lexical-binding: t; -*-

;;; Commentary:
;; `batchd-on-save-mode' (global): after each save, runs plugins/editors/on-save.mjs on the file,
;; which submits the job that the project's .batchd-on-save.yaml names for it (if any).  It runs
;; as a background process: saving never waits.  The job id, and with `batchd-wait' its end,
;; appear in the echo area and *Messages*.

;;; Code:

(defgroup batchd nil "Submit batchd jobs on save." :group 'tools)

(defcustom batchd-on-save-script
  (expand-file-name "../on-save.mjs" (file-name-directory (or load-file-name buffer-file-name)))
  "The helper that finds the rule and submits the job."
  :type 'file)

(defcustom batchd-node "node" "The Node.js program." :type 'string)

(defcustom batchd-wait t "Also report each job's end (done, failed, cancelled)." :type 'boolean)

(defvar batchd--processes nil "Submissions under way (for tests and `batchd-wait-all').")

(defun batchd--filter (_process output)
  (dolist (line (split-string output "\n" t))
    (message "batchd: %s" line)))

(defun batchd--sentinel (process _event)
  (unless (process-live-p process)
    (setq batchd--processes (delq process batchd--processes))))

(defun batchd-submit-file (file)
  "Submit the job that FILE's project names for it, in the background."
  (let ((process (make-process
                  :name "batchd-on-save"
                  :command (append (list batchd-node batchd-on-save-script)
                                   (when batchd-wait '("--wait"))
                                   (list file))
                  :connection-type 'pipe
                  :noquery t
                  :filter #'batchd--filter
                  :sentinel #'batchd--sentinel)))
    (push process batchd--processes)
    process))

(defun batchd--after-save ()
  (when buffer-file-name
    (batchd-submit-file (expand-file-name buffer-file-name))))

(defun batchd-wait-all (&optional seconds)
  "Wait up to SECONDS (default 60) for the submissions under way to end."
  (let ((deadline (+ (float-time) (or seconds 60))))
    (while (and batchd--processes (< (float-time) deadline))
      (accept-process-output nil 0.1))))

;;;###autoload
(define-minor-mode batchd-on-save-mode
  "Submit a batchd job when a file matching the project's rules is saved."
  :global t
  :lighter " batchd"
  (if batchd-on-save-mode
      (add-hook 'after-save-hook #'batchd--after-save)
    (remove-hook 'after-save-hook #'batchd--after-save)))

(provide 'batchd)
;;; batchd.el ends here
