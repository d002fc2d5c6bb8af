<?php
/**
 * The wp-admin → FormRelay dashboard page (admin.php?page=formrelay).
 *
 * The sidecar renders every view (docs/dashboard.md); this page fetches the
 * one asked for (`view=overview|jobs|job|logs`) server-side with a signed
 * request and prints it inside `<div class="wrap">`, filtered through
 * wp_kses() with the markup the views use (no scripts, no event handlers).
 * When the sidecar cannot be reached it prints the "FormRelay sidecar
 * unreachable" notice instead, with the last worker heartbeat and the number
 * of submissions waiting: capture keeps working without the sidecar.
 *
 * The capability `formrelay_manage` guards the page and the REST routes;
 * every user with `manage_options` has it (a `user_has_cap` filter), and a
 * site can grant it to any other role or user.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The dashboard page, its script, and the capability.
 */
final class FormRelay_Dashboard {

	const PAGE       = 'formrelay';
	const CAPABILITY = 'formrelay_manage';
	const VIEWS      = array( 'overview', 'jobs', 'job', 'logs' );
	const REFRESH_MS = 5000;

	/**
	 * The page's hook suffix (set when the menu is added).
	 *
	 * @var string
	 */
	private static $hook_suffix = '';

	/**
	 * Hooks needed on every request: the capability.
	 *
	 * @return void
	 */
	public static function register() {
		add_filter( 'user_has_cap', array( __CLASS__, 'grant_capability' ), 10, 1 );
	}

	/**
	 * Hooks needed in wp-admin: the menu and the script.
	 *
	 * @return void
	 */
	public static function register_admin() {
		add_action( 'admin_menu', array( __CLASS__, 'add_page' ) );
		add_action( 'admin_enqueue_scripts', array( __CLASS__, 'enqueue' ) );
	}

	/**
	 * The `user_has_cap` filter: whoever may manage options may manage FormRelay.
	 *
	 * @param bool[] $allcaps The user's capabilities.
	 * @return bool[]
	 */
	public static function grant_capability( $allcaps ) {
		if ( is_array( $allcaps ) && ! empty( $allcaps['manage_options'] ) ) {
			$allcaps[ self::CAPABILITY ] = true;
		}
		return $allcaps;
	}

	/**
	 * Top-level menu FormRelay.
	 *
	 * @return void
	 */
	public static function add_page() {
		self::$hook_suffix = (string) add_menu_page(
			__( 'FormRelay', 'formrelay-bridge' ),
			__( 'FormRelay', 'formrelay-bridge' ),
			self::CAPABILITY,
			self::PAGE,
			array( __CLASS__, 'render_page' ),
			'dashicons-migrate',
			58
		);
	}

	/**
	 * The page's script and style, on this page only.
	 *
	 * @param string $hook_suffix The current admin page.
	 * @return void
	 */
	public static function enqueue( $hook_suffix ) {
		if ( '' === self::$hook_suffix || $hook_suffix !== self::$hook_suffix ) {
			return;
		}
		$view = self::current_view();
		wp_enqueue_style( 'formrelay-dashboard', plugins_url( 'admin/formrelay-dashboard.css', FORMRELAY_BRIDGE_FILE ), array(), FORMRELAY_BRIDGE_VERSION );
		wp_enqueue_script( 'formrelay-dashboard', plugins_url( 'admin/formrelay-dashboard.js', FORMRELAY_BRIDGE_FILE ), array(), FORMRELAY_BRIDGE_VERSION, true );
		$config = array(
			'root'      => esc_url_raw( rest_url( FormRelay_REST::NAMESPACE_V1 . '/' ) ),
			'nonce'     => wp_create_nonce( 'wp_rest' ),
			'ajaxUrl'   => admin_url( 'admin-ajax.php' ),
			'view'      => $view,
			'params'    => (object) self::page_params( $view ),
			'refreshMs' => self::REFRESH_MS,
			'i18n'      => array(
				'confirmRestart' => __( 'Restart this job from scratch? It is sent to the partner again with a new idempotency key.', 'formrelay-bridge' ),
				'noneSelected'   => __( 'Select at least one job first.', 'formrelay-bridge' ),
				'failed'         => __( 'The request failed:', 'formrelay-bridge' ),
				'done'           => __( 'Done.', 'formrelay-bridge' ),
				/* translators: 1: job id, 2: status. */
				'jobStatus'      => __( 'Job #%1$s is now %2$s.', 'formrelay-bridge' ),
				/* translators: 1: number of jobs retried, 2: number skipped. */
				'bulkResult'     => __( 'Retried %1$s, skipped %2$s.', 'formrelay-bridge' ),
				'resumed'        => __( 'Delivery resumed.', 'formrelay-bridge' ),
				'notPaused'      => __( 'Delivery was not paused.', 'formrelay-bridge' ),
				'dismiss'        => __( 'Dismiss this notice.', 'formrelay-bridge' ),
				/* translators: 1: date and time (UTC) or "never", 2: number of submissions. */
				'unreachable'    => __( 'Last worker heartbeat: %1$s. Submissions waiting: %2$s.', 'formrelay-bridge' ),
				'never'          => __( 'never', 'formrelay-bridge' ),
			),
		);
		wp_add_inline_script( 'formrelay-dashboard', 'window.formrelayDashboard = ' . wp_json_encode( $config ) . ';', 'before' );
	}

	/**
	 * The page: heading, tabs, then the sidecar's view or the unreachable notice.
	 *
	 * @return void
	 */
	public static function render_page() {
		if ( ! current_user_can( self::CAPABILITY ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to access this page.', 'formrelay-bridge' ), '', array( 'response' => 403 ) );
		}
		$view   = self::current_view();
		$answer = FormRelay_Relay::fetch_view( $view, FormRelay_REST_Params::view_query( $view, self::page_params( $view ) ) );

		echo '<div class="wrap formrelay-dashboard">';
		// The script's notices; it moves this box under the view's heading.
		echo '<div id="formrelay-messages" aria-live="polite"></div>';
		if ( is_wp_error( $answer ) ) {
			self::render_heading();
			FormRelay_Unreachable::render_notice( $answer->get_error_data() );
		} elseif ( isset( $answer['html'] ) ) {
			// The fragment brings its own heading and tabs.
			printf(
				'<div id="formrelay-view" class="formrelay-view" data-formrelay-view="%s">%s</div>',
				esc_attr( $view ),
				FormRelay_Fragment::filter( $answer['html'] ) // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- filtered by wp_kses() in FormRelay_Fragment::filter().
			);
		} else {
			self::render_heading();
			$message = isset( $answer['data']['error'] ) && is_string( $answer['data']['error'] ) ? $answer['data']['error'] : '';
			printf(
				'<div class="notice notice-warning formrelay-view-error"><p>%s</p></div>',
				esc_html(
					sprintf(
						/* translators: 1: HTTP status, 2: the sidecar's message. */
						__( 'The sidecar answered %1$d: %2$s', 'formrelay-bridge' ),
						$answer['status'],
						$message
					)
				)
			);
			printf(
				'<p><a href="%s">%s</a></p>',
				esc_url( add_query_arg( 'page', self::PAGE, admin_url( 'admin.php' ) ) ),
				esc_html__( 'Back to the overview', 'formrelay-bridge' )
			);
		}
		echo '</div>';
	}

	/**
	 * The view asked for (`view=`), overview by default.
	 *
	 * @return string
	 */
	public static function current_view() {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- a read-only view choice.
		$view = isset( $_GET['view'] ) ? sanitize_key( wp_unslash( $_GET['view'] ) ) : '';
		return in_array( $view, self::VIEWS, true ) ? $view : 'overview';
	}

	/**
	 * The page's own query parameters that the view takes (not yet sanitized: FormRelay_REST_Params::view_query() does).
	 *
	 * @param string $view The current view.
	 * @return array<string, string>
	 */
	private static function page_params( $view ) {
		$names  = array(
			'jobs' => array( 'status', 'form_id', 'partner', 'search', 'from', 'to', 'orderby', 'order', 'paged', 'per_page' ),
			'logs' => array( 'level', 'event', 'job_id', 'search', 'from', 'to', 'paged', 'per_page' ),
			'job'  => array( 'id' ),
		);
		$params = array();
		foreach ( isset( $names[ $view ] ) ? $names[ $view ] : array() as $name ) {
			// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- read-only filters of a list.
			if ( isset( $_GET[ $name ] ) && is_string( $_GET[ $name ] ) ) {
				$params[ $name ] = sanitize_text_field( wp_unslash( $_GET[ $name ] ) ); // phpcs:ignore WordPress.Security.NonceVerification.Recommended
			}
		}
		return $params;
	}

	/**
	 * The page's heading, when there is no view to bring its own.
	 *
	 * @return void
	 */
	private static function render_heading() {
		echo '<h1 class="wp-heading-inline">' . esc_html( get_admin_page_title() ) . '</h1>';
		echo '<hr class="wp-header-end" />';
	}

	// ------------------------------------- kept for callers of the former methods.

	/**
	 * The "FormRelay sidecar unreachable" notice.
	 *
	 * @see FormRelay_Unreachable::render_notice()
	 *
	 * @param mixed $data The unreachable error's data (last_heartbeat, waiting, reason).
	 * @return void
	 */
	public static function render_unreachable( $data ) {
		FormRelay_Unreachable::render_notice( $data );
	}

	/**
	 * A view fragment from the sidecar, through wp_kses() with the dashboard's markup.
	 *
	 * @see FormRelay_Fragment::filter()
	 *
	 * @param string $html The fragment.
	 * @return string
	 */
	public static function filter_fragment( $html ) {
		return FormRelay_Fragment::filter( $html );
	}

	/**
	 * What a view may contain.
	 *
	 * @see FormRelay_Fragment::allowed_html()
	 *
	 * @return array
	 */
	public static function allowed_html() {
		return FormRelay_Fragment::allowed_html();
	}
}
