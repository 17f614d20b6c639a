"""Search spaces of the compared methods, one module each, built from shared pieces.

Every space is written with the library-neutral specs of :mod:`harness.methods.space` and depends
on the task only through its paper values (Table 9), so that "around the paper's value" means the
same thing for every method. All methods share :func:`search_spaces.common.finetune_space`, so a
comparison tunes fine-tuning equally for everyone.
"""
