# outboxd/runner-tests.mk: test plugins and tests of the sink runner's ABI 1.1 host side.
