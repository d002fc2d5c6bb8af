<?php
/**
 * WP-CLI: `wp formrelay status|retry <id>|resume`, for admins who live in a shell.
 *
 * Registered only when WP-CLI runs (formrelay-bridge.php). Each command goes
 * through the dashboard's signed bridge (FormRelay_Relay, so the same signed
 * request, the same answers and the same "unreachable" judgement) as the
 * WP-CLI user (`--user=`), who needs the dashboard's capability; the sidecar
 * names that user in its log rows. Errors are one line and exit 1.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Watch and steer FormRelay deliveries.
 */
final class FormRelay_CLI {

	/**
	 * Shows the delivery state: pause, waiting jobs, counts by status, workers.
	 *
	 * ## OPTIONS
	 *
	 * [--format=<format>]
	 * : text, or json (the sidecar's GET /admin/v1/stats answer as it is).
	 * ---
	 * default: text
	 * options:
	 *   - text
	 *   - json
	 * ---
	 *
	 * ## EXAMPLES
	 *
	 *     wp formrelay status --user=admin
	 *
	 * @param array $args       None.
	 * @param array $assoc_args The options.
	 * @return void
	 */
	public function status( $args, $assoc_args ) {
		$stats = self::call( 'GET', 'stats' )['data'];
		if ( isset( $assoc_args['format'] ) && 'json' === $assoc_args['format'] ) {
			WP_CLI::line( (string) wp_json_encode( $stats ) );
			return;
		}
		foreach ( FormRelay_CLI_Status::lines( $stats ) as $line ) {
			WP_CLI::line( $line );
		}
	}

	/**
	 * Retries a failed or cancelled job where it stopped.
	 *
	 * ## OPTIONS
	 *
	 * <id>
	 * : The job's id (the dashboard's Job #).
	 *
	 * ## EXAMPLES
	 *
	 *     wp formrelay retry 42 --user=admin
	 *
	 * @param array $args       The job id.
	 * @param array $assoc_args None.
	 * @return void
	 */
	public function retry( $args, $assoc_args ) { // phpcs:ignore Generic.CodeAnalysis.UnusedFunctionParameter.FoundAfterLastUsed -- WP-CLI's signature.
		$id = isset( $args[0] ) && ctype_digit( (string) $args[0] ) ? absint( $args[0] ) : 0;
		if ( $id < 1 ) {
			WP_CLI::error( 'the job id must be a positive whole number' );
		}
		$answer = self::call( 'POST', 'jobs/' . $id . '/retry' );
		if ( 404 === $answer['status'] ) {
			WP_CLI::error( sprintf( 'no such job: #%d', $id ) );
		}
		self::fail_unless_ok( $answer );
		$job = isset( $answer['data']['job'] ) && is_array( $answer['data']['job'] ) ? $answer['data']['job'] : array();
		WP_CLI::success( sprintf( 'job #%d is now %s', $id, isset( $job['status'] ) ? (string) $job['status'] : 'queued' ) );
	}

	/**
	 * Ends an outage pause now (after fixing the partner token, for a 401/403 pause).
	 *
	 * ## EXAMPLES
	 *
	 *     wp formrelay resume --user=admin
	 *
	 * @param array $args       None.
	 * @param array $assoc_args None.
	 * @return void
	 */
	public function resume( $args, $assoc_args ) { // phpcs:ignore Generic.CodeAnalysis.UnusedFunctionParameter -- WP-CLI's signature.
		$answer = self::call( 'POST', 'resume' );
		self::fail_unless_ok( $answer );
		if ( ! empty( $answer['data']['resumed'] ) ) {
			WP_CLI::success( 'delivery resumed' );
		} else {
			WP_CLI::success( 'delivery was not paused' );
		}
	}

	/**
	 * One request through the signed bridge as the current user; exits on "not allowed"
	 * and "unreachable".
	 *
	 * @param string $method GET or POST.
	 * @param string $route  Under /admin/v1/.
	 * @return array{status: int, data: array}
	 */
	private static function call( $method, $route ) {
		if ( ! get_current_user_id() ) {
			WP_CLI::error( 'not allowed: run as a user who may manage FormRelay, e.g. --user=admin (capability ' . FormRelay_Dashboard::CAPABILITY . ')' );
		}
		if ( ! current_user_can( FormRelay_Dashboard::CAPABILITY ) ) {
			WP_CLI::error( sprintf( 'not allowed: user %s lacks the %s capability', wp_get_current_user()->user_login, FormRelay_Dashboard::CAPABILITY ) );
		}
		// A POST without parameters sends and signs {} (docs/dashboard.md).
		$answer = FormRelay_Relay::relay( $method, $route, array(), 'GET' === $method ? null : '{}' );
		if ( is_wp_error( $answer ) ) {
			$data = (array) $answer->get_error_data();
			WP_CLI::error(
				sprintf(
					'FormRelay sidecar unreachable: %s. Last worker heartbeat: %s; submissions waiting: %s.',
					isset( $data['reason'] ) ? $data['reason'] : $answer->get_error_message(),
					empty( $data['last_heartbeat'] ) ? 'never' : str_replace( 'T', ' ', (string) $data['last_heartbeat'] ) . ' UTC',
					isset( $data['waiting'] ) ? (string) $data['waiting'] : 'unknown'
				)
			);
		}
		$data = $answer->get_data();
		return array(
			'status' => (int) $answer->get_status(),
			'data'   => is_array( $data ) ? $data : array(),
		);
	}

	/**
	 * Exit with the sidecar's own message unless it answered 2xx (409: not allowed in this status).
	 *
	 * @param array{status: int, data: array} $answer The sidecar's answer.
	 * @return void
	 */
	private static function fail_unless_ok( array $answer ) {
		if ( $answer['status'] >= 200 && $answer['status'] < 300 ) {
			return;
		}
		$message = isset( $answer['data']['error'] ) && is_string( $answer['data']['error'] ) ? $answer['data']['error'] : 'no message';
		WP_CLI::error( sprintf( 'the sidecar answered %d: %s', $answer['status'], $message ) );
	}
}
